import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  accessOf,
  bearer,
  createMemberSession,
  createOrgWithApiKey,
  createUserSession,
} from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { API_KEY_PATTERN } from './domain/tokens.ts';

describe('API key routes', () => {
  let database: TestDatabase;
  let t: TestApp;
  const clock = manualClock(new Date());
  before(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database, { clock, config: { rateLimit: { ipPerMinute: 100_000 } } });
  });
  after(async () => {
    await t.close();
    await database.drop();
  });

  const inject = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    options: { headers?: Record<string, string>; payload?: object; remoteAddress?: string } = {},
  ) => t.app.inject({ method, url, ...options });

  const createKey = async (headers: Record<string, string>, body: object = {}) =>
    inject('POST', '/v1/api-keys', {
      headers,
      payload: { name: 'checkout-web', scopes: ['org:read', 'ledger:read'], ...body },
    });

  describe('POST /v1/api-keys', () => {
    test('creates a key whose secret is shown once and works at once', async () => {
      const owner = await createUserSession(t.app);
      const response = await createKey(owner.headers, {
        environment: 'test',
        metadata: { app: 'checkout-web' },
        ipAllowlist: ['127.0.0.1'],
      });
      assert.equal(response.statusCode, 201);
      const { apiKey, secret } = response.json();
      assert.match(secret, API_KEY_PATTERN);
      assert.ok(secret.startsWith('keel_test_'));
      assert.equal(response.headers.location, `/v1/api-keys/${apiKey.id}`);
      assert.deepEqual(apiKey.scopes, ['org:read', 'ledger:read']);
      assert.deepEqual(apiKey.ipAllowlist, ['127.0.0.1/32']);
      assert.equal(apiKey.secrets[0].hint, secret.slice(-4));
      const read = await inject('GET', `/v1/api-keys/${apiKey.id}`, { headers: owner.headers });
      assert.equal(read.body.includes(secret), false, 'the secret is never shown again');
      const used = await inject('GET', '/v1/org', { headers: bearer(secret) });
      assert.equal(used.statusCode, 200);
      assert.equal(used.json().id, owner.orgId);
    });

    test('validation: scopes are required and known; allowlists and expiry must be valid', async () => {
      const owner = await createUserSession(t.app);
      const missing = await inject('POST', '/v1/api-keys', {
        headers: owner.headers,
        payload: { name: 'x' },
      });
      assert.equal(missing.statusCode, 400);
      assert.equal(missing.json().errors[0].path, '/scopes');
      const unknown = await createKey(owner.headers, { scopes: ['root:all'] });
      assert.equal(unknown.statusCode, 400);
      const sessionOnly = await createKey(owner.headers, { scopes: ['account:write'] });
      assert.equal(sessionOnly.statusCode, 400, 'account permissions are never key scopes');
      const badCidr = await createKey(owner.headers, { ipAllowlist: ['10.0.0.0/40'] });
      assert.equal(badCidr.statusCode, 400);
      const past = await createKey(owner.headers, { expiresAt: '2000-01-01T00:00:00Z' });
      assert.equal(past.statusCode, 400);
    });

    test('authorization: viewers cannot create keys; nobody grants scopes they lack', async () => {
      const owner = await createUserSession(t.app);
      const viewer = await createMemberSession(t.app, owner.orgId, 'viewer');
      assert.equal((await createKey(viewer.headers)).statusCode, 403);
      const developer = await createMemberSession(t.app, owner.orgId, 'developer');
      assert.equal((await createKey(developer.headers)).statusCode, 201);
      const escalate = await createKey(developer.headers, { scopes: ['members:write'] });
      assert.equal(escalate.statusCode, 403);
      const keyMaker = await createOrgWithApiKey(t.app, { permissions: ['api_keys:write', 'ledger:read'] });
      assert.equal((await createKey(keyMaker.headers, { scopes: ['ledger:read'] })).statusCode, 201);
      assert.equal((await createKey(keyMaker.headers, { scopes: ['ledger:write'] })).statusCode, 403);
    });

    test('authentication: no credential is 401; a mistyped key fails its checksum', async () => {
      assert.equal((await createKey({})).statusCode, 401);
      const { apiKey } = await createOrgWithApiKey(t.app);
      const typo = apiKey.slice(0, 15) + (apiKey[15] === 'A' ? 'B' : 'A') + apiKey.slice(16);
      const response = await inject('GET', '/v1/org', { headers: bearer(typo) });
      assert.equal(response.statusCode, 401);
      assert.match(response.json().detail, /checksum/);
    });
  });

  describe('GET /v1/api-keys', () => {
    test('lists the org’s keys newest first, by cursor; revoked keys only when asked', async () => {
      const owner = await createUserSession(t.app);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await createKey(owner.headers)).json().apiKey.id);
      const first = await inject('GET', '/v1/api-keys?limit=2', { headers: owner.headers });
      const second = await inject('GET', `/v1/api-keys?limit=2&cursor=${first.json().nextCursor}`, {
        headers: owner.headers,
      });
      const listed = [...first.json().data, ...second.json().data].map((key: { id: string }) => key.id);
      assert.deepEqual(listed, [...ids].reverse());
      assert.equal(second.json().nextCursor, null);
      await inject('DELETE', `/v1/api-keys/${ids[0]}`, { headers: owner.headers });
      const active = await inject('GET', '/v1/api-keys', { headers: owner.headers });
      assert.equal(active.json().data.length, 2);
      const all = await inject('GET', '/v1/api-keys?includeRevoked=true', { headers: owner.headers });
      assert.equal(all.json().data.length, 3);
      assert.ok(all.json().data.find((key: { id: string }) => key.id === ids[0]).revokedAt);
    });

    test('cross-org: another org’s key is neither listed nor readable', async () => {
      const mine = await createUserSession(t.app);
      const theirs = await createOrgWithApiKey(t.app);
      const list = await inject('GET', '/v1/api-keys', { headers: mine.headers });
      assert.ok(!list.json().data.some((key: { id: string }) => key.id === theirs.keyId));
      const read = await inject('GET', `/v1/api-keys/${theirs.keyId}`, { headers: mine.headers });
      assert.equal(read.statusCode, 404);
    });

    test('authorization: a key without api_keys:read cannot list keys', async () => {
      const key = await createOrgWithApiKey(t.app, { permissions: ['org:read'] });
      const response = await inject('GET', '/v1/api-keys', { headers: key.headers });
      assert.equal(response.statusCode, 403);
      assert.match(response.json().detail, /api_keys:read/);
    });

    test('last use is recorded without a write per request', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey, secret } = (await createKey(owner.headers)).json();
      assert.equal(apiKey.lastUsedAt, null);
      await inject('GET', '/v1/org', { headers: bearer(secret) });
      await accessOf(t.app).keyCache.flushLastUsed();
      const read = await inject('GET', `/v1/api-keys/${apiKey.id}`, { headers: owner.headers });
      assert.equal(read.json().lastUsedAt, clock.now().toISOString());
    });
  });

  describe('PATCH /v1/api-keys/:keyId', () => {
    test('scope, allowlist and rate-limit changes apply to the next request', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey, secret } = (await createKey(owner.headers)).json();
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(secret) })).statusCode, 200);
      const updated = await inject('PATCH', `/v1/api-keys/${apiKey.id}`, {
        headers: owner.headers,
        payload: { scopes: ['ledger:read'], rateLimitPerMinute: 42, metadata: { team: 'ops' } },
      });
      assert.equal(updated.statusCode, 200);
      assert.deepEqual(updated.json().metadata, { team: 'ops' });
      const narrowed = await inject('GET', '/v1/org', { headers: bearer(secret) });
      assert.equal(narrowed.statusCode, 403);
      assert.match(String(narrowed.headers['ratelimit-policy']), /"key";q=42;w=60/);
      await inject('PATCH', `/v1/api-keys/${apiKey.id}`, {
        headers: owner.headers,
        payload: { scopes: ['org:read'], ipAllowlist: ['192.0.2.0/24'] },
      });
      const fromElsewhere = await inject('GET', '/v1/org', { headers: bearer(secret) });
      assert.equal(fromElsewhere.statusCode, 403);
      assert.equal(fromElsewhere.json().code, 'IP_NOT_ALLOWED');
      const fromAllowed = await inject('GET', '/v1/org', {
        headers: bearer(secret),
        remoteAddress: '192.0.2.9',
      });
      assert.equal(fromAllowed.statusCode, 200);
    });

    test('validation, authorization and cross-org', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey } = (await createKey(owner.headers)).json();
      const empty = await inject('PATCH', `/v1/api-keys/${apiKey.id}`, {
        headers: owner.headers,
        payload: {},
      });
      assert.equal(empty.statusCode, 400);
      const viewer = await createMemberSession(t.app, owner.orgId, 'viewer');
      const denied = await inject('PATCH', `/v1/api-keys/${apiKey.id}`, {
        headers: viewer.headers,
        payload: { name: 'mine' },
      });
      assert.equal(denied.statusCode, 403);
      const stranger = await createUserSession(t.app);
      const crossOrg = await inject('PATCH', `/v1/api-keys/${apiKey.id}`, {
        headers: stranger.headers,
        payload: { name: 'mine' },
      });
      assert.equal(crossOrg.statusCode, 404);
    });

    test('an expired key stops working', async () => {
      const owner = await createUserSession(t.app);
      const expiresAt = new Date(clock.now().getTime() + 60_000).toISOString();
      const { secret } = (await createKey(owner.headers, { expiresAt })).json();
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(secret) })).statusCode, 200);
      clock.advance(60_001);
      const expired = await inject('GET', '/v1/org', { headers: bearer(secret) });
      assert.equal(expired.statusCode, 401);
      assert.match(expired.json().detail, /expired/);
    });
  });

  describe('POST /v1/api-keys/:keyId/roll', () => {
    test('the new secret works at once; the old one until the grace period ends', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey, secret: old } = (await createKey(owner.headers)).json();
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(old) })).statusCode, 200, 'cached');
      const rolled = await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
        headers: owner.headers,
        payload: { gracePeriodSeconds: 3600 },
      });
      assert.equal(rolled.statusCode, 200);
      const { secret: fresh, graceEndsAt, apiKey: after } = rolled.json();
      assert.notEqual(fresh, old);
      assert.equal(after.id, apiKey.id, 'same key, same settings');
      assert.equal(graceEndsAt, new Date(clock.now().getTime() + 3_600_000).toISOString());
      assert.equal(after.secrets.length, 2, 'both secrets work during the grace');
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(fresh) })).statusCode, 200);
      clock.advance(3_600_000 - 1);
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(old) })).statusCode, 200, 'in grace');
      clock.advance(1);
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(old) })).statusCode, 401, 'grace over');
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(fresh) })).statusCode, 200);
    });

    test('a roll without grace stops the old secret at once; rolling again shortens nothing it should not', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey, secret: first } = (await createKey(owner.headers)).json();
      const second = (
        await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
          headers: owner.headers,
          payload: { gracePeriodSeconds: 600 },
        })
      ).json().secret;
      const third = (
        await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
          headers: owner.headers,
          payload: { gracePeriodSeconds: 0 },
        })
      ).json().secret;
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(first) })).statusCode, 401);
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(second) })).statusCode, 401);
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(third) })).statusCode, 200);
    });

    test('validation, authorization and cross-org', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey } = (await createKey(owner.headers)).json();
      const tooLong = await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
        headers: owner.headers,
        payload: { gracePeriodSeconds: 8 * 24 * 3600 },
      });
      assert.equal(tooLong.statusCode, 400);
      const viewer = await createMemberSession(t.app, owner.orgId, 'viewer');
      const denied = await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
        headers: viewer.headers,
        payload: { gracePeriodSeconds: 0 },
      });
      assert.equal(denied.statusCode, 403);
      const stranger = await createUserSession(t.app);
      const crossOrg = await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
        headers: stranger.headers,
        payload: { gracePeriodSeconds: 0 },
      });
      assert.equal(crossOrg.statusCode, 404);
    });
  });

  describe('DELETE /v1/api-keys/:keyId', () => {
    test('revokes every secret of the key at once, including one in grace', async () => {
      const owner = await createUserSession(t.app);
      const { apiKey, secret: old } = (await createKey(owner.headers)).json();
      const fresh = (
        await inject('POST', `/v1/api-keys/${apiKey.id}/roll`, {
          headers: owner.headers,
          payload: { gracePeriodSeconds: 3600 },
        })
      ).json().secret;
      assert.equal((await inject('GET', '/v1/org', { headers: bearer(fresh) })).statusCode, 200, 'cached');
      const revoked = await inject('DELETE', `/v1/api-keys/${apiKey.id}`, { headers: owner.headers });
      assert.equal(revoked.statusCode, 204);
      for (const secret of [old, fresh]) {
        assert.equal((await inject('GET', '/v1/org', { headers: bearer(secret) })).statusCode, 401);
      }
      const again = await inject('DELETE', `/v1/api-keys/${apiKey.id}`, { headers: owner.headers });
      assert.equal(again.statusCode, 404);
    });

    test('authorization and cross-org: the other org’s key keeps working', async () => {
      const theirs = await createOrgWithApiKey(t.app);
      const mine = await createUserSession(t.app);
      const crossOrg = await inject('DELETE', `/v1/api-keys/${theirs.keyId}`, { headers: mine.headers });
      assert.equal(crossOrg.statusCode, 404);
      assert.equal((await inject('GET', '/v1/org', { headers: theirs.headers })).statusCode, 200);
      const readOnly = await createOrgWithApiKey(t.app, { permissions: ['api_keys:read'] });
      const denied = await inject('DELETE', `/v1/api-keys/${readOnly.keyId}`, { headers: readOnly.headers });
      assert.equal(denied.statusCode, 403);
    });
  });
});
