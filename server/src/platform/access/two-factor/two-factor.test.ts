import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import {
  bearer,
  createMemberSession,
  createOrgWithApiKey,
  createUserSession,
  FIXTURE_PASSWORD,
} from '../../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '../../../../test/harness.ts';
import { manualClock } from '../../../infra/clock.ts';
import { ORG_HEADER } from '../hooks.ts';
import { TOTP_PERIOD_SECONDS, totpCodeAt } from './domain/totp.ts';
import { TWO_FACTOR_MAX_FAILURES } from './service.ts';

const STEP_MS = TOTP_PERIOD_SECONDS * 1000;

describe('two-factor authentication (TOTP)', () => {
  let database: TestDatabase;
  let test_: TestApp;
  const clock = manualClock('2026-11-21T12:00:00Z');

  before(async () => {
    database = await createTestDatabase();
    test_ = await buildTestApp(database, { clock });
  });
  after(async () => {
    await test_.close();
    await database.drop();
  });

  const inject = (options: InjectOptions) => test_.app.inject(options);
  /** The code the user's authenticator shows now; moves the clock to a fresh step first. */
  const nextCode = async (secret: string) => {
    clock.advance(STEP_MS);
    return totpCodeAt(secret, clock.now());
  };

  /** 1. begin enrolment, 2. confirm with the app's code: 2FA is on. */
  async function enrol(headers: Record<string, string>) {
    const begun = await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers });
    assert.equal(begun.statusCode, 201, begun.body);
    const { secret } = begun.json();
    const confirmed = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/totp/confirm',
      headers,
      payload: { code: await nextCode(secret) },
    });
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    return { secret: secret as string, recoveryCodes: confirmed.json().recoveryCodes as string[] };
  }

  const logIn = (email: string) =>
    inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: FIXTURE_PASSWORD } });
  const secondStep = (mfaToken: string, code: string) =>
    inject({ method: 'POST', url: '/v1/auth/login/two-factor', payload: { mfaToken, code } });

  test('enrolment shows the secret and otpauth URI once; 2FA stays off until a code confirms it', async () => {
    const user = await createUserSession(test_.app);
    const begun = await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers: user.headers });
    assert.equal(begun.statusCode, 201);
    const { secret, otpauthUri } = begun.json();
    assert.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
    const uri = new URL(otpauthUri);
    assert.equal(uri.searchParams.get('secret'), secret);
    assert.equal(uri.searchParams.get('issuer'), 'Keel');
    assert.equal(decodeURIComponent(uri.pathname), `/Keel:${user.email}`);

    const status = await inject({ method: 'GET', url: '/v1/me/two-factor', headers: user.headers });
    assert.deepEqual(status.json(), {
      enabled: false,
      enabledAt: null,
      pending: true,
      recoveryCodesRemaining: 0,
    });
    const login = await logIn(user.email);
    assert.equal(login.json().status, 'ok', 'an unconfirmed enrolment asks nothing at sign-in');
  });

  test('a code from the app turns 2FA on and answers ten recovery codes', async () => {
    const user = await createUserSession(test_.app);
    const { recoveryCodes } = await enrol(user.headers);
    assert.equal(recoveryCodes.length, 10);
    const status = await inject({ method: 'GET', url: '/v1/me/two-factor', headers: user.headers });
    assert.equal(status.json().enabled, true);
    assert.equal(status.json().enabledAt, clock.now().toISOString());
    assert.equal(status.json().recoveryCodesRemaining, 10);
    const me = await inject({ method: 'GET', url: '/v1/me', headers: user.headers });
    assert.equal(me.json().user.twoFactorEnabled, true);
    const row = await test_.runtime.database.db
      .selectFrom('recovery_codes')
      .select('code_hash')
      .where('user_id', '=', user.userId)
      .execute();
    assert.equal(row.length, 10);
    for (const code of recoveryCodes) {
      assert.ok(
        !row.some((r) => r.code_hash.toString('utf8').includes(code)),
        'codes are stored hashed only',
      );
    }
    const secretRow = await test_.runtime.database.db
      .selectFrom('totp_credentials')
      .select('secret_sealed')
      .where('user_id', '=', user.userId)
      .executeTakeFirstOrThrow();
    assert.match(secretRow.secret_sealed, /^v1\./, 'the TOTP secret is sealed at rest');
  });

  test('enrolling again while 2FA is on answers 409', async () => {
    const user = await createUserSession(test_.app);
    await enrol(user.headers);
    const again = await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers: user.headers });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, 'TWO_FACTOR_ALREADY_ENABLED');
  });

  test('a wrong confirmation code is refused and 2FA stays off', async () => {
    const user = await createUserSession(test_.app);
    const begun = await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers: user.headers });
    const code = await totpCodeAt(begun.json().secret, new Date(clock.now().getTime() + 10 * STEP_MS));
    const confirmed = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/totp/confirm',
      headers: user.headers,
      payload: { code },
    });
    assert.equal(confirmed.statusCode, 401);
    assert.equal(confirmed.json().code, 'TWO_FACTOR_CODE_INVALID');
    const status = await inject({ method: 'GET', url: '/v1/me/two-factor', headers: user.headers });
    assert.equal(status.json().enabled, false);
  });

  test('confirming without a started enrolment answers 409', async () => {
    const user = await createUserSession(test_.app);
    const confirmed = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/totp/confirm',
      headers: user.headers,
      payload: { code: '123456' },
    });
    assert.equal(confirmed.statusCode, 409);
    assert.equal(confirmed.json().code, 'TWO_FACTOR_ENROLMENT_MISSING');
  });

  test('sign-in of a user with 2FA asks for a code, and the code completes it with a session', async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    const login = await logIn(user.email);
    assert.equal(login.statusCode, 200);
    assert.equal(login.json().status, 'mfa_required');
    assert.equal(login.headers['set-cookie'], undefined, 'no session before the second factor');

    const completed = await secondStep(login.json().mfaToken, await nextCode(secret));
    assert.equal(completed.statusCode, 200, completed.body);
    const body = completed.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.user.id, user.userId);
    assert.equal(body.orgId, user.orgId);
    assert.equal(body.session.method, 'password', 'the session records the first factor');
    assert.match(String(completed.headers['set-cookie']), /^keel_session=keel_sess_.*HttpOnly/);
    const me = await inject({ method: 'GET', url: '/v1/me', headers: bearer(body.token) });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().user.id, user.userId);
  });

  test('a code is accepted once: the same code again is a replay, even in its window', async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    const code = await nextCode(secret);
    const first = await secondStep((await logIn(user.email)).json().mfaToken, code);
    assert.equal(first.statusCode, 200);
    clock.advance(1_000);
    const replay = await secondStep((await logIn(user.email)).json().mfaToken, code);
    assert.equal(replay.statusCode, 401);
    assert.equal(replay.json().code, 'TWO_FACTOR_CODE_INVALID');
  });

  test('a code from the previous step still works (clock drift), one from two steps ago does not', async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    clock.advance(STEP_MS * 3);
    const previous = await totpCodeAt(secret, new Date(clock.now().getTime() - STEP_MS));
    const accepted = await secondStep((await logIn(user.email)).json().mfaToken, previous);
    assert.equal(accepted.statusCode, 200);
    clock.advance(STEP_MS * 3);
    const stale = await totpCodeAt(secret, new Date(clock.now().getTime() - 2 * STEP_MS));
    const refused = await secondStep((await logIn(user.email)).json().mfaToken, stale);
    assert.equal(refused.statusCode, 401);
  });

  test('after a wrong code the problem carries a fresh MFA token, which a right code completes', async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    const login = await logIn(user.email);
    const wrong = await secondStep(login.json().mfaToken, '000000');
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().code, 'TWO_FACTOR_CODE_INVALID');
    const retryToken = wrong.json().mfaToken;
    assert.match(retryToken, /^keel_mfa_/);
    assert.notEqual(retryToken, login.json().mfaToken);
    const stale = await secondStep(login.json().mfaToken, await nextCode(secret));
    assert.equal(stale.json().code, 'MFA_TOKEN_INVALID', 'the first token was used up by the wrong code');
    const right = await secondStep(retryToken, await nextCode(secret));
    assert.equal(right.statusCode, 200);
  });

  test('an MFA token works once and expires after 5 minutes', async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    const mfaToken = (await logIn(user.email)).json().mfaToken;
    assert.equal((await secondStep(mfaToken, await nextCode(secret))).statusCode, 200);
    const reused = await secondStep(mfaToken, await nextCode(secret));
    assert.equal(reused.statusCode, 401);
    assert.equal(reused.json().code, 'MFA_TOKEN_INVALID');

    const late = (await logIn(user.email)).json().mfaToken;
    clock.advance(5 * 60 * 1000 + 1);
    const expired = await secondStep(late, await totpCodeAt(secret, clock.now()));
    assert.equal(expired.json().code, 'MFA_TOKEN_INVALID');
  });

  test('a recovery code signs in once, and counts down', async () => {
    const user = await createUserSession(test_.app);
    const { recoveryCodes } = await enrol(user.headers);
    const code = recoveryCodes[3]!;
    const first = await secondStep((await logIn(user.email)).json().mfaToken, code.toUpperCase());
    assert.equal(first.statusCode, 200, 'case does not matter');
    const again = await secondStep((await logIn(user.email)).json().mfaToken, code);
    assert.equal(again.statusCode, 401);
    const status = await inject({ method: 'GET', url: '/v1/me/two-factor', headers: user.headers });
    assert.equal(status.json().recoveryCodesRemaining, 9);
  });

  test('another user’s code does not complete a user’s sign-in', async () => {
    const alice = await createUserSession(test_.app);
    const bob = await createUserSession(test_.app);
    const aliceFactor = await enrol(alice.headers);
    const bobFactor = await enrol(bob.headers);
    const bobLogin = (await logIn(bob.email)).json().mfaToken;
    const crossed = await secondStep(bobLogin, await nextCode(aliceFactor.secret));
    assert.equal(crossed.statusCode, 401);
    const crossedRecovery = await secondStep(crossed.json().mfaToken, aliceFactor.recoveryCodes[0]!);
    assert.equal(crossedRecovery.statusCode, 401, 'recovery codes are per user');
    assert.equal(
      (await secondStep(crossedRecovery.json().mfaToken, bobFactor.recoveryCodes[0]!)).statusCode,
      200,
    );
  });

  test(`after ${TWO_FACTOR_MAX_FAILURES} wrong codes the account's second-factor checks pause (429)`, async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    let mfaToken = (await logIn(user.email)).json().mfaToken;
    for (let attempt = 0; attempt < TWO_FACTOR_MAX_FAILURES; attempt += 1) {
      const wrong = await secondStep(mfaToken, '000000');
      assert.equal(wrong.statusCode, 401);
      mfaToken = wrong.json().mfaToken;
    }
    const paused = await secondStep((await logIn(user.email)).json().mfaToken, await nextCode(secret));
    assert.equal(paused.statusCode, 429);
    assert.equal(paused.json().code, 'TWO_FACTOR_THROTTLED');
    assert.ok(Number(paused.headers['retry-after']) > 0);
  });

  test('disabling needs a current code; afterwards sign-in asks for none', async () => {
    const user = await createUserSession(test_.app);
    const { secret } = await enrol(user.headers);
    const wrong = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/disable',
      headers: user.headers,
      payload: { code: '000000' },
    });
    assert.equal(wrong.statusCode, 401);
    const disabled = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/disable',
      headers: user.headers,
      payload: { code: await nextCode(secret) },
    });
    assert.equal(disabled.statusCode, 204);
    assert.equal((await logIn(user.email)).json().status, 'ok');
    const status = await inject({ method: 'GET', url: '/v1/me/two-factor', headers: user.headers });
    assert.deepEqual(status.json(), {
      enabled: false,
      enabledAt: null,
      pending: false,
      recoveryCodesRemaining: 0,
    });
    const again = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/disable',
      headers: user.headers,
      payload: { code: '123456' },
    });
    assert.equal(again.json().code, 'TWO_FACTOR_NOT_ENABLED');
  });

  test('new recovery codes replace the old ones', async () => {
    const user = await createUserSession(test_.app);
    const { secret, recoveryCodes: old } = await enrol(user.headers);
    const renewed = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/recovery-codes',
      headers: user.headers,
      payload: { code: await nextCode(secret) },
    });
    assert.equal(renewed.statusCode, 200);
    const fresh: string[] = renewed.json().recoveryCodes;
    assert.equal(fresh.length, 10);
    assert.equal((await secondStep((await logIn(user.email)).json().mfaToken, old[0]!)).statusCode, 401);
    assert.equal((await secondStep((await logIn(user.email)).json().mfaToken, fresh[0]!)).statusCode, 200);
  });

  test('invalid bodies answer 400 naming every bad field', async () => {
    const user = await createUserSession(test_.app);
    const confirm = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/totp/confirm',
      headers: user.headers,
      payload: { code: '12ab56' },
    });
    assert.equal(confirm.statusCode, 400);
    assert.equal(confirm.json().errors[0].path, '/code');
    const step = await inject({ method: 'POST', url: '/v1/auth/login/two-factor', payload: {} });
    assert.equal(step.statusCode, 400);
    const paths = step
      .json()
      .errors.map((error: { path: string }) => error.path)
      .sort();
    assert.deepEqual(paths, ['/code', '/mfaToken']);
  });

  test('account routes need a session: 401 without one, 403 for an API key', async () => {
    const anonymous = await inject({ method: 'GET', url: '/v1/me/two-factor' });
    assert.equal(anonymous.statusCode, 401);
    const { headers } = await createOrgWithApiKey(test_.app);
    const withKey = await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers });
    assert.equal(withKey.statusCode, 403);
  });

  describe('org policy: owners and admins must use 2FA', () => {
    test('turning the policy on needs 2FA on your own account', async () => {
      const owner = await createUserSession(test_.app);
      const refused = await inject({
        method: 'PUT',
        url: '/v1/org/two-factor',
        headers: owner.headers,
        payload: { requireForAdmins: true },
      });
      assert.equal(refused.statusCode, 403);
      assert.equal(refused.json().code, 'TWO_FACTOR_REQUIRED');
      await enrol(owner.headers);
      const accepted = await inject({
        method: 'PUT',
        url: '/v1/org/two-factor',
        headers: owner.headers,
        payload: { requireForAdmins: true },
      });
      assert.equal(accepted.statusCode, 200, accepted.body);
      assert.equal(accepted.json().requireForAdmins, true);
      const read = await inject({ method: 'GET', url: '/v1/org/two-factor', headers: owner.headers });
      assert.deepEqual(read.json(), { requireForAdmins: true, updatedAt: clock.now().toISOString() });
    });

    test('an admin without 2FA is refused on org routes until they enrol; developers are not affected', async () => {
      const owner = await createUserSession(test_.app);
      await enrol(owner.headers);
      const admin = await createMemberSession(test_.app, owner.orgId, 'admin');
      const developer = await createMemberSession(test_.app, owner.orgId, 'developer');
      await inject({
        method: 'PUT',
        url: '/v1/org/two-factor',
        headers: owner.headers,
        payload: { requireForAdmins: true },
      });

      const blocked = await inject({ method: 'GET', url: '/v1/members', headers: admin.headers });
      assert.equal(blocked.statusCode, 403);
      assert.equal(blocked.json().code, 'TWO_FACTOR_REQUIRED');
      assert.equal(
        (await inject({ method: 'GET', url: '/v1/members', headers: developer.headers })).statusCode,
        200,
      );
      assert.equal((await inject({ method: 'GET', url: '/v1/me', headers: admin.headers })).statusCode, 200);

      await enrol(admin.headers);
      assert.equal(
        (await inject({ method: 'GET', url: '/v1/members', headers: admin.headers })).statusCode,
        200,
      );
    });

    test('API keys are not people: the policy does not apply to them', async () => {
      const { headers, orgId } = await createOrgWithApiKey(test_.app);
      await test_.runtime.database.db
        .insertInto('org_two_factor_policies')
        .values({ org_id: orgId, require_for_admins: true, updated_by: null, updated_at: clock.now() })
        .execute();
      assert.equal((await inject({ method: 'GET', url: '/v1/members', headers })).statusCode, 200);
    });

    test('one org’s policy does not follow its admin into another org', async () => {
      const strict = await createUserSession(test_.app);
      await enrol(strict.headers);
      await inject({
        method: 'PUT',
        url: '/v1/org/two-factor',
        headers: strict.headers,
        payload: { requireForAdmins: true },
      });
      const relaxed = await createUserSession(test_.app);
      const admin = await createMemberSession(test_.app, strict.orgId, 'admin');
      await test_.runtime.database.db
        .insertInto('memberships')
        .values({
          org_id: relaxed.orgId,
          user_id: admin.userId,
          role: 'admin',
          created_at: clock.now(),
          updated_at: clock.now(),
        })
        .execute();
      const inStrict = await inject({
        method: 'GET',
        url: '/v1/members',
        headers: { ...admin.headers, [ORG_HEADER]: strict.orgId },
      });
      const inRelaxed = await inject({
        method: 'GET',
        url: '/v1/members',
        headers: { ...admin.headers, [ORG_HEADER]: relaxed.orgId },
      });
      assert.equal(inStrict.statusCode, 403);
      assert.equal(inRelaxed.statusCode, 200);
    });

    test('the policy is read and changed only by the org’s admins, and never across orgs', async () => {
      const owner = await createUserSession(test_.app);
      const other = await createUserSession(test_.app);
      const viewer = await createMemberSession(test_.app, owner.orgId, 'viewer');
      const byViewer = await inject({ method: 'GET', url: '/v1/org/two-factor', headers: viewer.headers });
      assert.equal(byViewer.statusCode, 403);
      const crossOrg = await inject({
        method: 'PUT',
        url: '/v1/org/two-factor',
        headers: { ...other.headers, [ORG_HEADER]: owner.orgId },
        payload: { requireForAdmins: false },
      });
      assert.equal(crossOrg.statusCode, 404, 'another org answers as if it did not exist');
      const invalid = await inject({
        method: 'PUT',
        url: '/v1/org/two-factor',
        headers: owner.headers,
        payload: { requireForAdmins: 'yes please' },
      });
      assert.equal(invalid.statusCode, 400);
    });
  });
});
