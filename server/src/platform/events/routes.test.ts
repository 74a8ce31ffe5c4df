import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Type } from 'typebox';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { createEventsService, defineEvent } from './index.ts';

defineEvent({
  type: 'test_route.happened',
  version: 1,
  description: 'A test event.',
  payload: Type.Object({ n: Type.Integer() }),
});

describe('event routes', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let owner: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  let stranger: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  const ids: string[] = [];

  before(async () => {
    database = await createTestDatabase();
    keel = await buildTestApp(database);
    owner = await createOrgWithApiKey(keel.app, { permissions: ['events:read'] });
    stranger = await createOrgWithApiKey(keel.app);
    const events = createEventsService({
      db: keel.runtime.database.db,
      clock: keel.runtime.clock,
      newId: keel.runtime.newId,
    });
    for (let n = 0; n < 5; n++) {
      ids.push(
        ...(await keel.runtime.database.transaction((tx) =>
          events.emit(tx, owner.orgId, [{ type: 'test_route.happened', payload: { n } }]),
        )),
      );
    }
    // Events become readable once every older transaction in the cluster has ended (other test
    // files share it), so wait for them as a consumer would.
    const deadline = Date.now() + 10_000;
    while ((await events.list(owner.orgId, { limit: 10 })).length < ids.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  test('lists the org’s events in order, page by page', async () => {
    const first = await keel.app.inject({
      method: 'GET',
      url: '/v1/events?limit=3&type=test_route.happened',
      headers: owner.headers,
    });
    assert.equal(first.statusCode, 200);
    const page = first.json();
    assert.equal(page.data.length, 3);
    assert.ok(page.nextCursor);
    const second = await keel.app.inject({
      method: 'GET',
      url: `/v1/events?limit=3&type=test_route.happened&after=${page.nextCursor}`,
      headers: owner.headers,
    });
    const all = [...page.data, ...second.json().data];
    assert.deepEqual(
      all.map((event: { id: string }) => event.id),
      ids,
    );
    assert.deepEqual(all[0].data, { n: 0 });
    assert.equal(second.json().nextCursor, null);
  });

  test('gets one event; another org’s event answers 404', async () => {
    const own = await keel.app.inject({ method: 'GET', url: `/v1/events/${ids[0]}`, headers: owner.headers });
    assert.equal(own.statusCode, 200);
    assert.equal(own.json().type, 'test_route.happened');
    const foreign = await keel.app.inject({
      method: 'GET',
      url: `/v1/events/${ids[0]}`,
      headers: stranger.headers,
    });
    assert.equal(foreign.statusCode, 404);
    const list = await keel.app.inject({
      method: 'GET',
      url: '/v1/events?type=test_route.happened',
      headers: stranger.headers,
    });
    assert.deepEqual(list.json().data, []);
  });

  test('rejects a bad cursor and a bad limit', async () => {
    const cursor = await keel.app.inject({
      method: 'GET',
      url: '/v1/events?after=nonsense',
      headers: owner.headers,
    });
    assert.equal(cursor.statusCode, 400);
    assert.equal(cursor.json().errors[0].path, '/after');
    const limit = await keel.app.inject({
      method: 'GET',
      url: '/v1/events?limit=1000',
      headers: owner.headers,
    });
    assert.equal(limit.statusCode, 400);
  });

  test('needs credentials with events:read', async () => {
    assert.equal((await keel.app.inject({ method: 'GET', url: '/v1/events' })).statusCode, 401);
    const noScope = await createOrgWithApiKey(keel.app, { permissions: ['webhooks:read'] });
    assert.equal(
      (await keel.app.inject({ method: 'GET', url: '/v1/events', headers: noScope.headers })).statusCode,
      403,
    );
  });

  test('the OpenAPI document lists every catalogued event under webhooks', async () => {
    const document = (await keel.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.ok(document.webhooks['test_route.happened']);
    assert.ok(document.webhooks['webhook_endpoint.disabled']);
    assert.deepEqual(
      document.webhooks['test_route.happened'].post.requestBody.content['application/json'].schema.properties
        .data.properties,
      { n: { type: 'integer' } },
    );
  });
});
