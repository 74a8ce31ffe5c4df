import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOrgWithApiKey, createUserSession, FIXTURE_PASSWORD } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { assembleModules } from '../../app.ts';
import type { createAuditModule } from './index.ts';

type AuditModule = ReturnType<typeof createAuditModule>;

/** Security events of the access platform land in the audit chain of the orgs they concern. */
describe('security events in the audit log', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let audit: AuditModule;
  before(async () => {
    database = await createTestDatabase();
    keel = await buildTestApp(database);
    audit = assembleModules(keel.runtime).find((module) => module.name === 'audit') as AuditModule;
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  const actions = async (orgId: string) => {
    // The hook writes after the response is sent: wait for it as a reader would.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { entries } = await audit.service.list(orgId, {}, { limit: 100 });
    return entries.map((entry) => ({ action: entry.action, outcome: entry.outcome }));
  };

  test('a sign-in and a failed sign-in are recorded with the user as actor', async () => {
    const user = await createUserSession(keel.app);
    const wrong = await keel.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: user.email, password: 'not the password at all' },
    });
    assert.equal(wrong.statusCode, 401);
    const right = await keel.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: user.email, password: FIXTURE_PASSWORD },
    });
    assert.equal(right.statusCode, 200, right.body);
    const recorded = await actions(user.orgId);
    assert.deepEqual(
      recorded.filter((entry) => entry.action.startsWith('user.')),
      [
        { action: 'user.login', outcome: 'success' },
        { action: 'user.login_failed', outcome: 'failure' },
      ],
    );
    const { entries } = await audit.service.list(user.orgId, {}, { limit: 1 });
    assert.equal(entries[0]!.actor.id, user.userId);
    assert.equal((await audit.service.verify(user.orgId)).valid, true);
  });

  test('key created, rolled and revoked are recorded by name', async () => {
    const owner = await createOrgWithApiKey(keel.app);
    const created = await keel.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: owner.headers,
      payload: { name: 'ci', environment: 'test', scopes: ['events:read'] },
    });
    assert.equal(created.statusCode, 201, created.body);
    const keyId = created.json().id ?? created.json().apiKey?.id;
    const rolled = await keel.app.inject({
      method: 'POST',
      url: `/v1/api-keys/${keyId}/roll`,
      headers: owner.headers,
      payload: { gracePeriodSeconds: 0 },
    });
    assert.equal(rolled.statusCode, 200, rolled.body);
    const revoked = await keel.app.inject({
      method: 'DELETE',
      url: `/v1/api-keys/${keyId}`,
      headers: owner.headers,
    });
    assert.ok(revoked.statusCode < 300, revoked.body);
    const recorded = (await actions(owner.orgId)).map((entry) => entry.action);
    for (const action of ['api_key.created', 'api_key.rolled', 'api_key.revoked']) {
      assert.ok(recorded.includes(action), `${action} in ${recorded.join(', ')}`);
    }
  });
});
