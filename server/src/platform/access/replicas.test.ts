import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { accessOf, bearer, createOrgWithApiKey } from '../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  SKIP_WITHOUT_REDIS,
  type TestApp,
  type TestDatabase,
  testRedisUrl,
} from '../../../test/harness.ts';
import { deploymentNamespace } from '../rate-limit/index.ts';
import { KEY_REVOCATION_BOUND_MS } from './key-cache.ts';
import * as store from './store.ts';

/** Polls `probe` until it answers `status`; returns how long that took. */
async function timeUntil(probe: () => Promise<number>, status: number, timeoutMs = 5_000): Promise<number> {
  const startedAt = performance.now();
  while (performance.now() - startedAt < timeoutMs) {
    if ((await probe()) === status) return performance.now() - startedAt;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no ${status} within ${timeoutMs} ms`);
}

describe('two app instances sharing Postgres and Redis', { skip: SKIP_WITHOUT_REDIS }, () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    database = await createTestDatabase();
    const config = { redis: { url: testRedisUrl } };
    a = await buildTestApp(database, { config });
    b = await buildTestApp(database, { config });
    // Let both subscribe to invalidations before the tests revoke anything.
    await new Promise((resolve) => setTimeout(resolve, 500));
  });
  after(async () => {
    await a.close();
    await b.close();
    await database.drop();
  });

  const org = (app: TestApp, headers: Record<string, string>) =>
    app.app.inject({ method: 'GET', url: '/v1/org', headers }).then((response) => response.statusCode);

  test('revoking a key on one instance stops it on the other within 1 s', async () => {
    const key = await createOrgWithApiKey(a.app);
    assert.equal(await org(b, key.headers), 200, 'b has the key cached');
    assert.equal(await org(b, key.headers), 200);
    const revokedAt = performance.now();
    assert.ok(await accessOf(a.app).apiKeys.revoke(key.orgId, key.keyId));
    const elapsed = await timeUntil(() => org(b, key.headers), 401);
    assert.ok(performance.now() - revokedAt < KEY_REVOCATION_BOUND_MS, `took ${elapsed} ms`);
  });

  test('a revocation whose message was lost still lands within 1 s (the version poll)', async () => {
    const key = await createOrgWithApiKey(a.app);
    assert.equal(await org(b, key.headers), 200);
    // Revoke behind the service's back and bump the version without publishing.
    await store.revokeApiKey(a.runtime.database.db, key.orgId, key.keyId, new Date());
    await a.runtime.kv.increment(`${deploymentNamespace(a.config)}:access:api-keys:version`, 1);
    const elapsed = await timeUntil(() => org(b, key.headers), 401);
    assert.ok(elapsed < KEY_REVOCATION_BOUND_MS, `took ${elapsed} ms`);
  });

  test('a scope change and an org limit change reach the other instance', async () => {
    const key = await createOrgWithApiKey(a.app);
    assert.equal(await org(b, key.headers), 200);
    const access = accessOf(a.app);
    await access.apiKeys.update({ permissions: new Set(['ledger:read']) }, key.orgId, key.keyId, {
      scopes: ['ledger:read'],
    });
    await timeUntil(() => org(b, key.headers), 403, KEY_REVOCATION_BOUND_MS);
    await access.apiKeys.update({ permissions: new Set(['org:read']) }, key.orgId, key.keyId, {
      scopes: ['org:read'],
    });
    await timeUntil(() => org(b, key.headers), 200, KEY_REVOCATION_BOUND_MS);
    await access.service.updateOrg(key.orgId, { rateLimitPerMinute: 77 });
    const policy = async () =>
      /"org";q=77;/.test(
        String(
          (await b.app.inject({ method: 'GET', url: '/v1/org', headers: key.headers })).headers[
            'ratelimit-policy'
          ],
        ),
      )
        ? 1
        : 0;
    await timeUntil(policy, 1, KEY_REVOCATION_BOUND_MS);
  });

  test('a key’s limit is shared: parallel requests across both instances admit exactly the quota', async () => {
    const key = await createOrgWithApiKey(a.app);
    const limit = 10;
    await accessOf(a.app).apiKeys.update({ permissions: new Set() }, key.orgId, key.keyId, {
      rateLimitPerMinute: limit,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => org(i % 2 === 0 ? a : b, bearer(key.apiKey))),
    );
    assert.equal(statuses.filter((status) => status === 200).length, limit);
    assert.equal(statuses.filter((status) => status === 429).length, 40 - limit);
  });
});
