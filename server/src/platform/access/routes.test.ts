import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  accessOf,
  bearer,
  createOrgWithApiKey,
  createUserSession,
  FIXTURE_PASSWORD,
  uniqueEmail,
} from '../../../test/fixtures.ts';
import { useTestApp } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { ACCOUNT_THROTTLE } from './domain/login-throttle.ts';
import { SESSION_IDLE_TIMEOUT_MS } from './service.ts';

const PASSWORD = 'correct horse battery staple';

describe('account routes: sign-up, sign-in, sessions, orgs', () => {
  const clock = manualClock(new Date());
  // Sign-in tests make many unauthenticated requests from one address; the per-address limit
  // has its own tests (hooks.test.ts).
  const t = useTestApp({ clock, config: { rateLimit: { ipPerMinute: 100_000 } } });
  const { inject } = t;

  describe('POST /v1/auth/signup', () => {
    test('creates the user, an org they own and a session usable as Bearer and as cookie', async () => {
      const email = uniqueEmail();
      const response = await inject('POST', '/v1/auth/signup', {
        payload: { email: email.toUpperCase(), password: PASSWORD, name: 'Ada', orgName: 'Acme' },
      });
      assert.equal(response.statusCode, 201);
      const body = response.json();
      assert.equal(body.user.email, email, 'emails are stored lower-cased');
      assert.match(body.token, /^keel_sess_/);
      assert.equal(body.session.current, true);
      const cookie = String(response.headers['set-cookie']);
      assert.match(cookie, /^keel_session=keel_sess_/);
      for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/'])
        assert.ok(cookie.includes(attribute));

      const viaBearer = await inject('GET', '/v1/me', { headers: bearer(body.token) });
      assert.equal(viaBearer.statusCode, 200);
      assert.equal(viaBearer.json().role, 'owner');
      assert.equal(viaBearer.json().orgId, body.orgId);
      const viaCookie = await inject('GET', '/v1/org', { headers: { cookie: `keel_session=${body.token}` } });
      assert.equal(viaCookie.statusCode, 200);
      assert.equal(viaCookie.json().name, 'Acme');
    });

    test('lists every invalid field: a short password and a malformed email', async () => {
      const response = await inject('POST', '/v1/auth/signup', {
        payload: { email: 'not-an-email', password: 'short' },
      });
      assert.equal(response.statusCode, 400);
      const paths = response
        .json()
        .errors.map((error: { path: string }) => error.path)
        .sort();
      assert.deepEqual(paths, ['/email', '/password']);
    });

    test('refuses an email that has an account with 409 EMAIL_TAKEN', async () => {
      const { email } = await createUserSession(t.app);
      const response = await inject('POST', '/v1/auth/signup', { payload: { email, password: PASSWORD } });
      assert.equal(response.statusCode, 409);
      assert.equal(response.json().code, 'EMAIL_TAKEN');
    });
  });

  describe('POST /v1/auth/login', () => {
    test('signs in with the right password', async () => {
      const { email, orgId } = await createUserSession(t.app);
      const response = await inject('POST', '/v1/auth/login', {
        payload: { email, password: FIXTURE_PASSWORD },
      });
      assert.equal(response.statusCode, 200);
      assert.equal(response.json().status, 'ok');
      assert.equal(response.json().orgId, orgId);
      assert.match(String(response.headers['set-cookie']), /keel_session=keel_sess_/);
    });

    test('a wrong password and an unknown email get the same 401 INVALID_CREDENTIALS', async () => {
      const { email } = await createUserSession(t.app);
      const wrong = await inject('POST', '/v1/auth/login', {
        payload: { email, password: 'not the password' },
        remoteAddress: '192.0.2.10',
      });
      const unknown = await inject('POST', '/v1/auth/login', {
        payload: { email: uniqueEmail(), password: 'not the password' },
        remoteAddress: '192.0.2.10',
      });
      assert.equal(wrong.statusCode, 401);
      assert.equal(wrong.json().code, 'INVALID_CREDENTIALS');
      assert.equal(unknown.json().detail, wrong.json().detail);
    });

    test('validation: a missing password is a 400 naming it', async () => {
      const response = await inject('POST', '/v1/auth/login', { payload: { email: uniqueEmail() } });
      assert.equal(response.statusCode, 400);
      assert.equal(response.json().errors[0].path, '/password');
    });

    test('repeated failures for an account back off, then lock out even the right password', async () => {
      const { email } = await createUserSession(t.app);
      const attempt = (password: string, address: string) =>
        inject('POST', '/v1/auth/login', { payload: { email, password }, remoteAddress: address });
      // 1. The free failures, each from a new address so that only the account counts.
      for (let i = 0; i < ACCOUNT_THROTTLE.freeFailures; i++) {
        assert.equal((await attempt('wrong password!', `198.51.100.${i + 1}`)).statusCode, 401);
      }
      // 2. The next attempt right away is refused, whatever the password, with Retry-After.
      const throttled = await attempt(FIXTURE_PASSWORD, '198.51.100.50');
      assert.equal(throttled.statusCode, 429);
      assert.equal(throttled.json().code, 'LOGIN_THROTTLED');
      assert.equal(throttled.headers['retry-after'], '1');
      // 3. Failing on through the backoff reaches the lockout.
      for (let i = ACCOUNT_THROTTLE.freeFailures; i < ACCOUNT_THROTTLE.lockoutFailures; i++) {
        clock.advance(ACCOUNT_THROTTLE.maxDelayMs);
        assert.equal((await attempt('wrong password!', `198.51.100.${i + 1}`)).statusCode, 401);
      }
      clock.advance(ACCOUNT_THROTTLE.maxDelayMs);
      const locked = await attempt(FIXTURE_PASSWORD, '198.51.100.60');
      assert.equal(locked.statusCode, 429);
      assert.match(locked.json().detail, /locked/);
      // 4. After the lockout the right password works, and resets the count.
      clock.advance(ACCOUNT_THROTTLE.lockoutMs);
      assert.equal((await attempt(FIXTURE_PASSWORD, '198.51.100.61')).statusCode, 200);
      assert.equal((await attempt('wrong password!', '198.51.100.62')).statusCode, 401);
    });

    test('repeated failures from one address back off across accounts', async () => {
      const address = '203.0.113.99';
      let last = 0;
      for (let i = 0; i < 21; i++) {
        const response = await inject('POST', '/v1/auth/login', {
          payload: { email: uniqueEmail(), password: 'wrong password!' },
          remoteAddress: address,
        });
        last = response.statusCode;
      }
      assert.equal(last, 429, 'the 21st failure from one address within the window is throttled');
    });

    test('a user with two-factor on gets an MFA challenge instead of a session', async () => {
      const { email, userId } = await createUserSession(t.app);
      await accessOf(t.app).service.setTotpEnabledAt(userId, clock.now());
      const response = await inject('POST', '/v1/auth/login', {
        payload: { email, password: FIXTURE_PASSWORD },
      });
      assert.equal(response.statusCode, 200);
      const body = response.json();
      assert.equal(body.status, 'mfa_required');
      assert.match(body.mfaToken, /^keel_mfa_/);
      assert.equal(response.headers['set-cookie'], undefined, 'no session before the second factor');
      const challenge = await accessOf(t.app).service.consumeMfaChallenge(body.mfaToken);
      assert.equal(challenge?.userId, userId);
      assert.equal(await accessOf(t.app).service.consumeMfaChallenge(body.mfaToken), undefined, 'single use');
    });
  });

  describe('sessions', () => {
    test('POST /v1/auth/logout revokes the session and clears the cookie', async () => {
      const session = await createUserSession(t.app);
      const response = await inject('POST', '/v1/auth/logout', { headers: session.headers });
      assert.equal(response.statusCode, 204);
      assert.match(String(response.headers['set-cookie']), /keel_session=;.*Expires=Thu, 01 Jan 1970/);
      const after = await inject('GET', '/v1/me', { headers: session.headers });
      assert.equal(after.statusCode, 401);
    });

    test('account routes need a session: 401 without one, 403 for an API key', async () => {
      const key = await createOrgWithApiKey(t.app);
      for (const [method, url] of [
        ['POST', '/v1/auth/logout'],
        ['GET', '/v1/me'],
        ['GET', '/v1/sessions'],
        ['GET', '/v1/orgs'],
        ['POST', '/v1/orgs'],
      ] as const) {
        const anonymous = await inject(method, url, { payload: method === 'POST' ? {} : undefined });
        assert.equal(anonymous.statusCode, 401, `${method} ${url} anonymous`);
        assert.equal(anonymous.headers['www-authenticate'], 'Bearer realm="keel"');
        const withKey = await inject(method, url, { headers: key.headers });
        assert.equal(withKey.statusCode, 403, `${method} ${url} with an API key`);
      }
    });

    test('GET /v1/sessions lists the user’s live sessions, pages by cursor, marks the current one', async () => {
      const first = await createUserSession(t.app);
      const second = await accessOf(t.app).service.createSessionForUser(first.userId, { method: 'password' });
      const page1 = await inject('GET', '/v1/sessions?limit=1', { headers: first.headers });
      assert.equal(page1.statusCode, 200);
      assert.equal(page1.json().data.length, 1);
      assert.equal(page1.json().data[0].id, second.session.id, 'newest first');
      assert.equal(page1.json().data[0].current, false);
      const page2 = await inject('GET', `/v1/sessions?limit=1&cursor=${page1.json().nextCursor}`, {
        headers: first.headers,
      });
      assert.equal(page2.json().data[0].current, true);
      assert.equal(page2.json().nextCursor, null);
      const tooMany = await inject('GET', '/v1/sessions?limit=101', { headers: first.headers });
      assert.equal(tooMany.statusCode, 400);
      const badCursor = await inject('GET', '/v1/sessions?cursor=bm9wZQ', { headers: first.headers });
      assert.equal(badCursor.statusCode, 400);
      assert.equal(badCursor.json().errors[0].path, '/cursor');
    });

    test('DELETE /v1/sessions/:id signs out that device; another user’s session answers 404', async () => {
      const user = await createUserSession(t.app);
      const other = await accessOf(t.app).service.createSessionForUser(user.userId, { method: 'password' });
      const stranger = await createUserSession(t.app);
      const crossUser = await inject('DELETE', `/v1/sessions/${other.session.id}`, {
        headers: stranger.headers,
      });
      assert.equal(crossUser.statusCode, 404);
      assert.equal((await inject('GET', '/v1/me', { headers: bearer(other.token) })).statusCode, 200);
      const revoked = await inject('DELETE', `/v1/sessions/${other.session.id}`, { headers: user.headers });
      assert.equal(revoked.statusCode, 204);
      assert.equal((await inject('GET', '/v1/me', { headers: bearer(other.token) })).statusCode, 401);
      assert.equal((await inject('GET', '/v1/me', { headers: user.headers })).statusCode, 200);
    });

    test('a session unused for the idle timeout expires; using it extends it', async () => {
      const session = await createUserSession(t.app);
      clock.advance(SESSION_IDLE_TIMEOUT_MS - 60_000);
      assert.equal((await inject('GET', '/v1/me', { headers: session.headers })).statusCode, 200);
      clock.advance(SESSION_IDLE_TIMEOUT_MS - 60_000);
      assert.equal((await inject('GET', '/v1/me', { headers: session.headers })).statusCode, 200, 'extended');
      clock.advance(SESSION_IDLE_TIMEOUT_MS + 1);
      assert.equal((await inject('GET', '/v1/me', { headers: session.headers })).statusCode, 401);
    });

    test('POST /v1/me/password changes it and signs out every other session', async () => {
      const user = await createUserSession(t.app);
      const other = await accessOf(t.app).service.createSessionForUser(user.userId, { method: 'password' });
      const wrong = await inject('POST', '/v1/me/password', {
        headers: user.headers,
        payload: { currentPassword: 'not it at all', newPassword: 'a brand new password' },
      });
      assert.equal(wrong.statusCode, 401);
      const invalid = await inject('POST', '/v1/me/password', {
        headers: user.headers,
        payload: { currentPassword: FIXTURE_PASSWORD, newPassword: 'short' },
      });
      assert.equal(invalid.statusCode, 400);
      const changed = await inject('POST', '/v1/me/password', {
        headers: user.headers,
        payload: { currentPassword: FIXTURE_PASSWORD, newPassword: 'a brand new password' },
      });
      assert.equal(changed.statusCode, 204);
      assert.equal(
        (await inject('GET', '/v1/me', { headers: user.headers })).statusCode,
        200,
        'this one stays',
      );
      assert.equal((await inject('GET', '/v1/me', { headers: bearer(other.token) })).statusCode, 401);
      const login = await inject('POST', '/v1/auth/login', {
        payload: { email: user.email, password: 'a brand new password' },
      });
      assert.equal(login.statusCode, 200);
    });
  });

  describe('orgs of the signed-in user', () => {
    test('POST /v1/orgs creates an org owned by the caller; Keel-Org acts in it', async () => {
      const user = await createUserSession(t.app);
      const created = await inject('POST', '/v1/orgs', {
        headers: user.headers,
        payload: { name: 'Second' },
      });
      assert.equal(created.statusCode, 201);
      const orgId = created.json().id;
      const me = await inject('GET', '/v1/me', { headers: { ...user.headers, 'keel-org': orgId } });
      assert.equal(me.json().orgId, orgId);
      assert.equal(me.json().role, 'owner');
      const list = await inject('GET', '/v1/orgs', { headers: user.headers });
      assert.deepEqual(
        list
          .json()
          .data.map((org: { id: string }) => org.id)
          .sort(),
        [user.orgId, orgId].sort(),
      );
      const invalid = await inject('POST', '/v1/orgs', { headers: user.headers, payload: { name: '' } });
      assert.equal(invalid.statusCode, 400);
    });

    test('naming an org the user is not a member of answers 404', async () => {
      const user = await createUserSession(t.app);
      const stranger = await createUserSession(t.app);
      for (const org of [stranger.orgId, 'org_not-even-an-id']) {
        const response = await inject('GET', '/v1/org', { headers: { ...user.headers, 'keel-org': org } });
        assert.equal(response.statusCode, 404, org);
      }
    });
  });
});
