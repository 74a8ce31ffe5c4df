import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import {
  createMemberSession,
  createOrgWithApiKey,
  createUserSession,
  FIXTURE_PASSWORD,
  uniqueEmail,
} from '../../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '../../../../test/harness.ts';
import { type IdpAccount, startTestIdp, type TestIdp } from '../../../../test/oidc-provider.ts';
import { ORG_HEADER } from '../hooks.ts';
import { totpCodeAt } from '../two-factor/domain/totp.ts';
import { checkIssuer, safeReturnTo } from './service.ts';

/** The default PUBLIC_URL of a test app, and so the redirect URI registered at the IdP. */
const PUBLIC_URL = 'http://localhost:8080';
const REDIRECT_URI = `${PUBLIC_URL}/v1/auth/sso/callback`;

describe('single sign-on (OpenID Connect)', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let idp: TestIdp;
  let subjects = 0;

  before(async () => {
    database = await createTestDatabase();
    idp = await startTestIdp({ redirectUri: REDIRECT_URI });
    // The IdP runs on this machine: the operator allowlists loopback for the SSRF guard.
    keel = await buildTestApp(database, { config: { webhooks: { ssrfAllowlist: ['127.0.0.1/32'] } } });
  });
  after(async () => {
    await keel.close();
    await idp.close();
    await database.drop();
  });

  const inject = (options: InjectOptions) => keel.app.inject(options);
  const person = (overrides: Partial<IdpAccount> = {}): IdpAccount => ({
    sub: `idp-user-${++subjects}`,
    email: uniqueEmail('sso'),
    emailVerified: true,
    name: 'Ada Lovelace',
    ...overrides,
  });
  const cookieOf = (setCookie: unknown) => {
    const match = /keel_session=(keel_sess_[0-9A-Za-z]+)/.exec(String(setCookie));
    assert.ok(match, `a session cookie: ${String(setCookie)}`);
    return `keel_session=${match[1]}`;
  };

  /** An org whose owner connected it to the test IdP, with `defaultRole` for newcomers. */
  async function connectedOrg(defaultRole = 'developer') {
    const owner = await createUserSession(keel.app);
    const response = await inject({
      method: 'PUT',
      url: '/v1/org/sso',
      headers: owner.headers,
      payload: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        emailDomains: ['example.com'],
        defaultRole,
      },
    });
    assert.equal(response.statusCode, 200, response.body);
    return owner;
  }

  /** 1. start at Keel, 2. log in at the IdP as `account`, 3. come back to Keel's callback. */
  async function signInWithSso(orgId: string, account: IdpAccount, returnTo?: string) {
    idp.loginAs(account);
    const query = new URLSearchParams({ orgId, ...(returnTo ? { returnTo } : {}) });
    const start = await inject({ method: 'GET', url: `/v1/auth/sso/start?${query}` });
    assert.equal(start.statusCode, 302, start.body);
    const callback = await idp.authorize(String(start.headers.location));
    assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
    return {
      callback,
      response: await inject({ method: 'GET', url: `${callback.pathname}${callback.search}` }),
    };
  }

  test('an org admin connects an IdP; the client secret is sealed and never returned', async () => {
    const owner = await createUserSession(keel.app);
    const secret = idp.clientSecret;
    const put = await inject({
      method: 'PUT',
      url: '/v1/org/sso',
      headers: owner.headers,
      payload: {
        issuer: `${idp.issuer}/`,
        clientId: idp.clientId,
        clientSecret: secret,
        emailDomains: ['Example.COM'],
      },
    });
    assert.equal(put.statusCode, 200, put.body);
    const body = put.json();
    assert.equal(body.issuer, idp.issuer);
    assert.equal(body.clientSecretSet, true);
    assert.equal(body.defaultRole, 'viewer');
    assert.deepEqual(body.emailDomains, ['example.com'], 'domains are lower-cased');
    assert.equal(body.redirectUri, REDIRECT_URI);
    assert.equal(body.signInUrl, `${PUBLIC_URL}/v1/auth/sso/start?orgId=${owner.orgId}`);
    const read = await inject({ method: 'GET', url: '/v1/org/sso', headers: owner.headers });
    for (const text of [put.body, read.body]) assert.ok(!text.includes(secret), 'the secret is not returned');
    const row = await keel.runtime.database.db
      .selectFrom('sso_connections')
      .select('client_secret_sealed')
      .where('org_id', '=', owner.orgId)
      .executeTakeFirstOrThrow();
    assert.match(row.client_secret_sealed, /^v1\./);
    assert.ok(!row.client_secret_sealed.includes(secret));

    const update = await inject({
      method: 'PUT',
      url: '/v1/org/sso',
      headers: owner.headers,
      payload: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        emailDomains: ['example.com'],
        defaultRole: 'developer',
      },
    });
    assert.equal(update.statusCode, 200, 'an update may keep the stored secret');
    assert.equal(update.json().id, body.id);
  });

  test('an issuer whose discovery fails is refused at configuration', async () => {
    const owner = await createUserSession(keel.app);
    const put = (issuer: string) =>
      inject({
        method: 'PUT',
        url: '/v1/org/sso',
        headers: owner.headers,
        payload: { issuer, clientId: 'x', clientSecret: 'y', emailDomains: ['example.com'] },
      });
    const unreachable = await put('http://127.0.0.1:1');
    assert.equal(unreachable.statusCode, 422);
    assert.equal(unreachable.json().code, 'SSO_DISCOVERY_FAILED');
    const notIssuer = await put(`${idp.issuer}/somewhere-else`);
    assert.equal(notIssuer.statusCode, 422);
    const privateAddress = await put('https://10.0.0.1');
    assert.equal(privateAddress.statusCode, 422, 'the SSRF guard refuses private addresses');
    assert.match(privateAddress.json().detail, /not public/);
    const plainHttp = await put('http://login.acme.example');
    assert.equal(plainHttp.statusCode, 400);
    assert.match(plainHttp.json().detail, /https/);
  });

  test('a first SSO sign-in creates the user from the verified email, adds them with the default role, and signs in', async () => {
    const owner = await connectedOrg('developer');
    const ada = person();
    const { response } = await signInWithSso(owner.orgId, ada, '/dashboard?tab=keys');
    assert.equal(response.statusCode, 302, response.body);
    assert.equal(response.headers.location, `${PUBLIC_URL}/dashboard?tab=keys`);
    const cookie = cookieOf(response.headers['set-cookie']);
    const me = await inject({ method: 'GET', url: '/v1/me', headers: { cookie, [ORG_HEADER]: owner.orgId } });
    assert.equal(me.statusCode, 200, me.body);
    assert.equal(me.json().user.email, ada.email);
    assert.equal(me.json().user.name, ada.name);
    assert.notEqual(me.json().user.emailVerifiedAt, null, 'the IdP verified the address');
    assert.equal(me.json().role, 'developer');
    const sessions = await inject({ method: 'GET', url: '/v1/sessions', headers: { cookie } });
    assert.equal(sessions.json().data[0].method, 'oidc');
  });

  test('the authorization request uses PKCE S256, a state and a nonce, and the registered redirect URI', async () => {
    const owner = await connectedOrg();
    const start = await inject({ method: 'GET', url: `/v1/auth/sso/start?orgId=${owner.orgId}` });
    const url = new URL(String(start.headers.location));
    assert.equal(url.origin, idp.issuer);
    assert.equal(url.searchParams.get('response_type'), 'code');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[\w-]{43}$/);
    assert.ok(url.searchParams.get('state'));
    assert.ok(url.searchParams.get('nonce'));
    assert.equal(url.searchParams.get('redirect_uri'), REDIRECT_URI);
    assert.equal(url.searchParams.get('scope'), 'openid email profile');
  });

  test('the same person signs in to the same user by issuer and subject, even after their email changed', async () => {
    const owner = await connectedOrg();
    const ada = person();
    const first = await signInWithSso(owner.orgId, ada);
    const second = await signInWithSso(owner.orgId, { ...ada, email: uniqueEmail('renamed') });
    const who = async (setCookie: unknown) =>
      (await inject({ method: 'GET', url: '/v1/me', headers: { cookie: cookieOf(setCookie) } })).json().user
        .id;
    assert.equal(
      await who(second.response.headers['set-cookie']),
      await who(first.response.headers['set-cookie']),
    );
  });

  test('an existing member is linked by verified email and keeps their role', async () => {
    const owner = await connectedOrg('developer');
    const member = await createMemberSession(keel.app, owner.orgId, 'viewer');
    const { response } = await signInWithSso(owner.orgId, person({ email: member.email }));
    assert.equal(response.statusCode, 302);
    const me = await inject({
      method: 'GET',
      url: '/v1/me',
      headers: { cookie: cookieOf(response.headers['set-cookie']), [ORG_HEADER]: owner.orgId },
    });
    assert.equal(me.json().user.id, member.userId);
    assert.equal(me.json().role, 'viewer');
  });

  test('an account outside the org is not taken over by the org’s IdP asserting its email', async () => {
    const owner = await connectedOrg();
    const outsider = await createUserSession(keel.app);
    const { response } = await signInWithSso(owner.orgId, person({ email: outsider.email }));
    assert.equal(response.statusCode, 409);
    assert.equal(response.json().code, 'SSO_ACCOUNT_CONFLICT');
    assert.equal(response.headers['set-cookie'], undefined);
  });

  test('a newcomer from a domain the org did not list is refused; a linked member comes in from any', async () => {
    const owner = await connectedOrg();
    const stranger = await signInWithSso(
      owner.orgId,
      person({ email: `someone-${++subjects}@gmail.example` }),
    );
    assert.equal(stranger.response.statusCode, 403);
    assert.equal(stranger.response.json().code, 'SSO_DOMAIN_NOT_ALLOWED');
    const ada = person();
    assert.equal((await signInWithSso(owner.orgId, ada)).response.statusCode, 302);
    const moved = await signInWithSso(owner.orgId, { ...ada, email: `ada-${subjects}@elsewhere.example` });
    assert.equal(moved.response.statusCode, 302, 'already a member by issuer and subject');
  });

  test('an email the IdP has not verified is refused', async () => {
    const owner = await connectedOrg();
    const { response } = await signInWithSso(owner.orgId, person({ emailVerified: false }));
    assert.equal(response.statusCode, 403);
    assert.equal(response.json().code, 'SSO_EMAIL_UNVERIFIED');
  });

  test('a state is answered once, and a tampered code fails', async () => {
    const owner = await connectedOrg();
    const { callback, response } = await signInWithSso(owner.orgId, person());
    assert.equal(response.statusCode, 302);
    const replay = await inject({ method: 'GET', url: `${callback.pathname}${callback.search}` });
    assert.equal(replay.statusCode, 400);
    assert.equal(replay.json().code, 'SSO_STATE_INVALID');

    idp.loginAs(person());
    const start = await inject({ method: 'GET', url: `/v1/auth/sso/start?orgId=${owner.orgId}` });
    const answer = await idp.authorize(String(start.headers.location));
    answer.searchParams.set('code', 'forged-code');
    const tampered = await inject({ method: 'GET', url: `${answer.pathname}${answer.search}` });
    assert.equal(tampered.statusCode, 401);
    assert.equal(tampered.json().code, 'SSO_LOGIN_FAILED');

    const unknown = await inject({ method: 'GET', url: '/v1/auth/sso/callback?state=made-up&code=x' });
    assert.equal(unknown.json().code, 'SSO_STATE_INVALID');
  });

  test('an IdP that refuses the person answers SSO_LOGIN_FAILED', async () => {
    const owner = await connectedOrg();
    const start = await inject({ method: 'GET', url: `/v1/auth/sso/start?orgId=${owner.orgId}` });
    const state = new URL(String(start.headers.location)).searchParams.get('state')!;
    const refused = await inject({
      method: 'GET',
      url: `/v1/auth/sso/callback?${new URLSearchParams({ state, error: 'access_denied', iss: idp.issuer })}`,
    });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.json().code, 'SSO_LOGIN_FAILED');
    assert.match(refused.json().detail, /access_denied/);
  });

  test('a user with 2FA is sent to the second step, which completes the SSO sign-in', async () => {
    const owner = await connectedOrg();
    const member = await createMemberSession(keel.app, owner.orgId, 'developer');
    const { secret } = (
      await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers: member.headers })
    ).json();
    const enabled = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/totp/confirm',
      headers: member.headers,
      payload: { code: await totpCodeAt(secret, new Date()) },
    });
    assert.equal(enabled.statusCode, 200);
    const { response } = await signInWithSso(owner.orgId, person({ email: member.email }), '/keys');
    assert.equal(response.statusCode, 302);
    assert.equal(response.headers['set-cookie'], undefined, 'no session before the second factor');
    const location = new URL(String(response.headers.location));
    assert.equal(`${location.origin}${location.pathname}`, `${PUBLIC_URL}/login/two-factor`);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(fragment.get('returnTo'), '/keys');
    const [recovery] = (
      await inject({
        method: 'POST',
        url: '/v1/me/two-factor/recovery-codes',
        headers: member.headers,
        payload: { code: await totpCodeAt(secret, new Date(Date.now() + 30_000)) },
      })
    ).json().recoveryCodes;
    const completed = await inject({
      method: 'POST',
      url: '/v1/auth/login/two-factor',
      payload: { mfaToken: fragment.get('mfaToken'), code: recovery },
    });
    assert.equal(completed.statusCode, 200, completed.body);
    assert.equal(completed.json().session.method, 'oidc');
    assert.equal(completed.json().user.id, member.userId);
  });

  test('returnTo can only name a path on this server', async () => {
    const owner = await connectedOrg();
    const { response } = await signInWithSso(owner.orgId, person(), '//evil.example/steal');
    assert.equal(response.headers.location, `${PUBLIC_URL}/`);
    for (const unsafe of ['https://evil.example', '//evil.example', '/\\evil.example', 'relative']) {
      assert.equal(safeReturnTo(unsafe), '/');
    }
    assert.equal(safeReturnTo('/dashboard?x=1'), '/dashboard?x=1');
  });

  test('issuers must be https, or http on this machine', () => {
    assert.deepEqual(checkIssuer('https://login.acme.example/'), {
      ok: true,
      issuer: 'https://login.acme.example',
    });
    assert.equal(checkIssuer('http://127.0.0.1:9000').ok, true);
    assert.equal(checkIssuer('http://login.acme.example').ok, false);
    assert.equal(checkIssuer('https://login.acme.example/?tenant=1').ok, false);
    assert.equal(checkIssuer('not a url').ok, false);
  });

  test('starting SSO for an org without a connection answers 404; bad queries 400', async () => {
    const plain = await createUserSession(keel.app);
    const none = await inject({ method: 'GET', url: `/v1/auth/sso/start?orgId=${plain.orgId}` });
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().code, 'SSO_NOT_CONFIGURED');
    const notAnOrg = await inject({ method: 'GET', url: '/v1/auth/sso/start?orgId=nonsense' });
    assert.equal(notAnOrg.statusCode, 404);
    const missing = await inject({ method: 'GET', url: '/v1/auth/sso/start' });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().errors[0].path, '/orgId');
  });

  test('only the org’s admins configure SSO; other orgs see nothing', async () => {
    const owner = await connectedOrg();
    const developer = await createMemberSession(keel.app, owner.orgId, 'developer');
    const outsider = await createUserSession(keel.app);
    const payload = {
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientSecret: idp.clientSecret,
      emailDomains: ['example.com'],
    };
    const byDeveloper = await inject({
      method: 'PUT',
      url: '/v1/org/sso',
      headers: developer.headers,
      payload,
    });
    assert.equal(byDeveloper.statusCode, 403);
    assert.equal(
      (await inject({ method: 'GET', url: '/v1/org/sso', headers: developer.headers })).statusCode,
      403,
    );
    const crossOrg = await inject({
      method: 'GET',
      url: '/v1/org/sso',
      headers: { ...outsider.headers, [ORG_HEADER]: owner.orgId },
    });
    assert.equal(crossOrg.statusCode, 404);
    const ownOrg = await inject({ method: 'GET', url: '/v1/org/sso', headers: outsider.headers });
    assert.equal(ownOrg.json().code, 'SSO_NOT_CONFIGURED', 'the outsider’s own org has no connection');
    assert.equal((await inject({ method: 'GET', url: '/v1/org/sso' })).statusCode, 401);
    const readOnlyKey = await createOrgWithApiKey(keel.app, { permissions: ['security:read'] });
    const byKey = await inject({ method: 'PUT', url: '/v1/org/sso', headers: readOnlyKey.headers, payload });
    assert.equal(byKey.statusCode, 403);
  });

  test('bad configurations answer 400: no secret for a new connection, owner as default role', async () => {
    const owner = await createUserSession(keel.app);
    const noSecret = await inject({
      method: 'PUT',
      url: '/v1/org/sso',
      headers: owner.headers,
      payload: { issuer: idp.issuer, clientId: idp.clientId, emailDomains: ['example.com'] },
    });
    assert.equal(noSecret.statusCode, 400);
    assert.match(noSecret.json().detail, /clientSecret/);
    const ownerRole = await inject({
      method: 'PUT',
      url: '/v1/org/sso',
      headers: owner.headers,
      payload: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: 's',
        emailDomains: ['example.com'],
        defaultRole: 'owner',
      },
    });
    assert.equal(ownerRole.statusCode, 400);
    assert.equal(ownerRole.json().errors[0].path, '/defaultRole');
  });

  test('disconnecting the IdP stops SSO sign-in; password sign-in still works', async () => {
    const owner = await connectedOrg();
    const removed = await inject({ method: 'DELETE', url: '/v1/org/sso', headers: owner.headers });
    assert.equal(removed.statusCode, 204);
    assert.equal(
      (await inject({ method: 'DELETE', url: '/v1/org/sso', headers: owner.headers })).statusCode,
      404,
    );
    const start = await inject({ method: 'GET', url: `/v1/auth/sso/start?orgId=${owner.orgId}` });
    assert.equal(start.statusCode, 404);
    const login = await inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: owner.email, password: FIXTURE_PASSWORD },
    });
    assert.equal(login.statusCode, 200);
  });
});
