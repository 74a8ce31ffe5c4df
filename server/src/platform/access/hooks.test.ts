import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { accessOf, bearer, createOrgWithApiKey, createUserSession } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import type { Permission } from '../../infra/http/auth.ts';
import { declaredPermissions } from '../../infra/permissions.ts';
import { generateApiKey } from './domain/tokens.ts';
import { documentPermission } from './hooks.ts';

const IP_LIMIT = 5;

describe('the access hooks: authentication, rate limits, authorization', () => {
  let database: TestDatabase;
  let t: TestApp;
  let fenced: TestApp;
  before(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database, {
      config: { rateLimit: { ipPerMinute: IP_LIMIT }, http: { corsOrigins: ['https://app.example.com'] } },
    });
    fenced = await buildTestApp(database, { config: { access: { adminIpAllowlist: ['10.0.0.0/8'] } } });
  });
  after(async () => {
    await t.close();
    await fenced.close();
    await database.drop();
  });

  let address = 0;
  /** Each test gets addresses of its own, so per-address limits do not leak between tests. */
  const freshAddress = () => `10.${Math.floor(++address / 250)}.${address % 250}.1`;

  describe('rate limits', () => {
    test('unauthenticated requests are limited per address, with the IETF headers on every answer', async () => {
      const ip = freshAddress();
      const answers = [];
      for (let i = 0; i <= IP_LIMIT; i++) {
        answers.push(await t.app.inject({ method: 'GET', url: '/v1/org', remoteAddress: ip }));
      }
      assert.deepEqual(
        answers.map((answer) => answer.statusCode),
        [401, 401, 401, 401, 401, 429],
      );
      assert.equal(answers[0]!.headers['ratelimit-policy'], `"ip";q=${IP_LIMIT};w=60`);
      assert.match(String(answers[0]!.headers.ratelimit), /^"ip";r=4;t=\d+$/);
      const denied = answers.at(-1)!;
      assert.equal(denied.json().code, 'RATE_LIMITED');
      assert.equal(denied.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(denied.headers['retry-after'], '12', 'one unit of 5/min comes back every 12 s');
      assert.match(String(denied.headers.ratelimit), /^"ip";r=0;t=60$/);
      const other = await t.app.inject({ method: 'GET', url: '/v1/org', remoteAddress: freshAddress() });
      assert.equal(other.statusCode, 401, 'another address has its own quota');
    });

    test('guessing API keys costs the address its quota', async () => {
      const ip = freshAddress();
      let last = 0;
      for (let i = 0; i <= IP_LIMIT; i++) {
        const guess = await t.app.inject({
          method: 'GET',
          url: '/v1/org',
          headers: bearer(generateApiKey('live')),
          remoteAddress: ip,
        });
        last = guess.statusCode;
      }
      assert.equal(last, 429);
    });

    test('health and metrics are never limited', async () => {
      const ip = freshAddress();
      for (let i = 0; i < IP_LIMIT * 2; i++) {
        const live = await t.app.inject({ method: 'GET', url: '/health/live', remoteAddress: ip });
        assert.equal(live.statusCode, 200);
        assert.equal(live.headers.ratelimit, undefined);
      }
    });

    test('requests that match no route are authenticated and limited per address too', async () => {
      const ip = freshAddress();
      const statuses = [];
      for (let i = 0; i <= IP_LIMIT; i++) {
        const probe = await t.app.inject({ method: 'GET', url: `/v1/no-such-thing/${i}`, remoteAddress: ip });
        statuses.push(probe.statusCode);
        if (i === 0) assert.equal(probe.headers['ratelimit-policy'], `"ip";q=${IP_LIMIT};w=60`);
      }
      assert.deepEqual(statuses, [404, 404, 404, 404, 404, 429]);
      const badKey = await t.app.inject({
        method: 'GET',
        url: '/v1/no-such-thing',
        headers: bearer(generateApiKey('live')),
        remoteAddress: freshAddress(),
      });
      assert.equal(badKey.statusCode, 401, 'a bad credential is refused before the 404');
      const { apiKey } = await createOrgWithApiKey(t.app);
      const known = await t.app.inject({
        method: 'GET',
        url: '/v1/no-such-thing',
        headers: bearer(apiKey),
        remoteAddress: freshAddress(),
      });
      assert.equal(known.statusCode, 404);
      assert.match(String(known.headers['ratelimit-policy']), /"key";q=/, 'limited per key, not per address');
    });

    test('the API reference and the OpenAPI document are limited per address like any public route', async () => {
      const ip = freshAddress();
      const statuses = [];
      for (let i = 0; i <= IP_LIMIT; i++) {
        statuses.push(
          (await t.app.inject({ method: 'GET', url: '/openapi.json', remoteAddress: ip })).statusCode,
        );
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    });

    test('authenticated requests are limited per key and per org, not per address', async () => {
      const key = await createOrgWithApiKey(t.app);
      const { apiKeys } = accessOf(t.app);
      const updated = await apiKeys.update({ permissions: new Set(['org:read']) }, key.orgId, key.keyId, {
        rateLimitPerMinute: 3,
      });
      assert.ok(updated.ok);
      const ip = freshAddress();
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        statuses.push(
          (await t.app.inject({ method: 'GET', url: '/v1/org', headers: key.headers, remoteAddress: ip }))
            .statusCode,
        );
      }
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const limited = await t.app.inject({ method: 'GET', url: '/v1/org', headers: key.headers });
      assert.equal(limited.json().policy, 'key');
      assert.match(String(limited.headers['ratelimit-policy']), /^"key";q=3;w=60, "org";q=10000;w=60$/);
    });

    test('limits apply atomically: a request the key limit denies costs the org nothing', async () => {
      const owner = await createUserSession(t.app);
      const access = accessOf(t.app);
      await access.service.updateOrg(owner.orgId, { rateLimitPerMinute: 3 });
      const makeKey = async (perMinute: number) => {
        const created = await access.apiKeys.create({ permissions: new Set(['org:read']) }, owner.orgId, {
          name: `limit ${perMinute}`,
          environment: 'live',
          scopes: ['org:read'],
          rateLimitPerMinute: perMinute,
        });
        assert.ok(created.ok);
        return bearer(created.secret);
      };
      const [tight, loose] = [await makeKey(1), await makeKey(100)];
      const call = async (headers: Record<string, string>) =>
        (await t.app.inject({ method: 'GET', url: '/v1/org', headers })).statusCode;
      assert.equal(await call(tight), 200);
      assert.equal(await call(tight), 429);
      assert.equal(await call(tight), 429);
      // The org had 3 units; the tight key used 1, its two denials used none.
      assert.equal(await call(loose), 200);
      assert.equal(await call(loose), 200);
      const denied = await t.app.inject({ method: 'GET', url: '/v1/org', headers: loose });
      assert.equal(denied.statusCode, 429);
      assert.equal(denied.json().policy, 'org');
    });

    test('a limited org gets one rate_limit.exceeded event per limit and window', async () => {
      const key = await createOrgWithApiKey(t.app);
      const access = accessOf(t.app);
      await access.apiKeys.update({ permissions: new Set() }, key.orgId, key.keyId, {
        rateLimitPerMinute: 1,
      });
      for (let i = 0; i < 5; i++) await t.app.inject({ method: 'GET', url: '/v1/org', headers: key.headers });
      const deadline = Date.now() + 5_000;
      let rows: { type: string; payload: unknown }[] = [];
      while (Date.now() < deadline) {
        rows = await t.runtime.database.db
          .selectFrom('events')
          .select(['type', 'payload'])
          .where('org_id', '=', key.orgId)
          .where('type', '=', 'rate_limit.exceeded')
          .execute();
        if (rows.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0]!.payload, {
        policy: 'key',
        subject: key.keyId,
        quota: 1,
        windowSeconds: 60,
        retryAfterSeconds: 60,
      });
    });
  });

  describe('authentication and authorization', () => {
    test('GET /v1/auth/whoami answers who the credential is; without one, 401', async () => {
      const key = await createOrgWithApiKey(t.app, { permissions: ['ledger:read', 'org:read'] });
      const response = await t.app.inject({ method: 'GET', url: '/v1/auth/whoami', headers: key.headers });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), {
        kind: 'api_key',
        id: key.keyId,
        orgId: key.orgId,
        permissions: ['ledger:read', 'org:read'],
      });
      const session = await createUserSession(t.app);
      const asUser = await t.app.inject({ method: 'GET', url: '/v1/auth/whoami', headers: session.headers });
      assert.equal(asUser.json().kind, 'session');
      assert.equal(asUser.json().id, session.userId);
      const anonymous = await t.app.inject({
        method: 'GET',
        url: '/v1/auth/whoami',
        remoteAddress: freshAddress(),
      });
      assert.equal(anonymous.statusCode, 401);
    });

    test('a malformed Authorization header is 401 even on a public route', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        headers: { authorization: 'Bearer not-a-token' },
        payload: { email: 'a@example.com', password: 'whatever' },
        remoteAddress: freshAddress(),
      });
      assert.equal(response.statusCode, 401);
    });

    test('a stale session cookie does not break public routes, and is cleared', async () => {
      const session = await createUserSession(t.app);
      await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: session.headers });
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        headers: { cookie: `keel_session=${session.token}` },
        payload: { email: session.email, password: 'fixture password 123' },
        remoteAddress: freshAddress(),
      });
      assert.equal(response.statusCode, 200);
    });

    test('cookie-authenticated changes from a foreign origin are refused (CSRF); allowed origins pass', async () => {
      const session = await createUserSession(t.app);
      const cookie = { cookie: `keel_session=${session.token}` };
      const foreign = await t.app.inject({
        method: 'POST',
        url: '/v1/orgs',
        headers: { ...cookie, origin: 'https://evil.example' },
        payload: { name: 'Phished' },
      });
      assert.equal(foreign.statusCode, 403);
      const allowed = await t.app.inject({
        method: 'POST',
        url: '/v1/orgs',
        headers: { ...cookie, origin: 'https://app.example.com' },
        payload: { name: 'Dashboard' },
      });
      assert.equal(allowed.statusCode, 201);
      const bearerFromAnywhere = await t.app.inject({
        method: 'POST',
        url: '/v1/orgs',
        headers: { ...session.headers, origin: 'https://evil.example' },
        payload: { name: 'Scripted' },
      });
      assert.equal(bearerFromAnywhere.statusCode, 201, 'a bearer token is not sent by browsers on their own');
    });

    test('the operator’s admin allowlist fences admin routes of every org', async () => {
      const owner = await createUserSession(fenced.app);
      const outside = await fenced.app.inject({
        method: 'GET',
        url: '/v1/org/security',
        headers: owner.headers,
      });
      assert.equal(outside.statusCode, 403);
      assert.equal(outside.json().code, 'IP_NOT_ALLOWED');
      const inside = await fenced.app.inject({
        method: 'GET',
        url: '/v1/org/security',
        headers: owner.headers,
        remoteAddress: '10.1.2.3',
      });
      assert.equal(inside.statusCode, 200);
      const notAdmin = await fenced.app.inject({ method: 'GET', url: '/v1/org', headers: owner.headers });
      assert.equal(notAdmin.statusCode, 200, 'org:read is not an admin permission');
    });
  });

  describe('permissions in the OpenAPI document', () => {
    test('every operation under /v1 declares its permission, or is one of the public sign-in routes', async () => {
      const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      const publicOperations: string[] = [];
      for (const [path, operations] of Object.entries(
        document.paths as Record<string, Record<string, Record<string, unknown>>>,
      )) {
        if (!path.startsWith('/v1/')) continue;
        for (const [method, operation] of Object.entries(operations)) {
          if (operation['x-keel-permission']) {
            assert.deepEqual(operation.security, [{ bearer: [] }], `${method} ${path}`);
            assert.match(
              String(operation.description),
              /Requires (permission `[a-z_]+:[a-z_]+`|authentication)/,
            );
          } else {
            publicOperations.push(String(operation.operationId));
          }
        }
      }
      for (const operationId of ['signUp', 'logIn']) assert.ok(publicOperations.includes(operationId));
      const keyCreation = document.paths['/v1/api-keys'].post;
      assert.equal(keyCreation['x-keel-permission'], 'api_keys:write');
      assert.ok(document.paths['/v1/org/security'].put.description.includes('admin permission'));
    });

    test('every route that declares a permission answers 401 without a credential, whatever its module', async () => {
      const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      let checked = 0;
      for (const [path, operations] of Object.entries(
        document.paths as Record<string, Record<string, Record<string, unknown>>>,
      )) {
        for (const [method, operation] of Object.entries(operations)) {
          if (!operation['x-keel-permission']) continue;
          const url = path.replaceAll(/\{[^}]+\}/g, 'x_01jd7x8m3q9f2k5v6w7y8z9a0b');
          const response = await t.app.inject({
            method: method.toUpperCase() as 'GET',
            url,
            remoteAddress: freshAddress(),
          });
          assert.equal(response.statusCode, 401, `${method.toUpperCase()} ${path}`);
          checked += 1;
        }
      }
      assert.ok(checked > 20, `only ${checked} protected operations found`);
    });

    test('a route that needs a permission no module declares stops the app from starting', () => {
      assert.throws(
        () => documentPermission({ method: 'GET', url: '/v1/x', config: { permission: 'made:up' } } as never),
        /needs permission "made:up", which no module declares/,
      );
    });

    test('every route’s permission is declared by a module (definePermissions)', async () => {
      const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      const named = Object.values(document.paths as Record<string, Record<string, Record<string, unknown>>>)
        .flatMap((operations) => Object.values(operations))
        .map((operation) => operation['x-keel-permission'])
        .filter((permission) => typeof permission === 'string' && permission !== 'authenticated');
      assert.ok(named.length > 20);
      for (const permission of named)
        assert.ok(declaredPermissions().has(permission as Permission), String(permission));
    });
  });
});
