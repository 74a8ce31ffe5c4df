import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';

describe('webhook routes', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let owner: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  let stranger: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  const receiverUrl = 'http://127.0.0.1:9/hooks';

  before(async () => {
    database = await createTestDatabase();
    keel = await buildTestApp(database, { config: { webhooks: { ssrfAllowlist: ['127.0.0.1'] } } });
    owner = await createOrgWithApiKey(keel.app);
    stranger = await createOrgWithApiKey(keel.app);
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  const call = (
    method: string,
    url: string,
    headers: Record<string, string> = owner.headers,
    payload?: unknown,
  ) =>
    keel.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload !== undefined && { payload: payload as object }),
    });

  async function createEndpoint(body: object = { url: receiverUrl }) {
    const response = await call('POST', '/v1/webhooks/endpoints', owner.headers, body);
    assert.equal(response.statusCode, 201, response.body);
    return response.json();
  }

  test('creating an endpoint returns its secret once; reading it never does', async () => {
    const created = await createEndpoint({
      url: receiverUrl,
      description: 'orders',
      eventTypes: ['webhook.test'],
    });
    assert.match(created.secret, /^whsec_[A-Za-z0-9+/=]+$/);
    assert.match(created.id, /^whe_/);
    assert.deepEqual(created.eventTypes, ['webhook.test']);
    const read = await call('GET', `/v1/webhooks/endpoints/${created.id}`);
    assert.equal(read.statusCode, 200);
    assert.equal(read.json().secret, undefined);
    assert.doesNotMatch(read.body, /whsec_/);
    const listed = await call('GET', '/v1/webhooks/endpoints?limit=100');
    assert.ok(listed.json().data.some((endpoint: { id: string }) => endpoint.id === created.id));
    assert.doesNotMatch(listed.body, /whsec_/);
  });

  test('validation lists every bad field', async () => {
    const response = await call('POST', '/v1/webhooks/endpoints', owner.headers, {
      url: 'http://169.254.169.254/latest/meta-data',
      eventTypes: ['no.such_event'],
    });
    assert.equal(response.statusCode, 400);
    const paths = response
      .json()
      .errors.map((error: { path: string }) => error.path)
      .sort();
    assert.deepEqual(paths, ['/eventTypes/0', '/url']);
    const unknownField = await call('POST', '/v1/webhooks/endpoints', owner.headers, {
      url: receiverUrl,
      colour: 'red',
    });
    assert.equal(unknownField.statusCode, 400);
  });

  test('every route needs credentials', async () => {
    for (const [method, url] of [
      ['POST', '/v1/webhooks/endpoints'],
      ['GET', '/v1/webhooks/endpoints'],
      ['GET', '/v1/webhooks/endpoints/whe_x'],
      ['PATCH', '/v1/webhooks/endpoints/whe_x'],
      ['DELETE', '/v1/webhooks/endpoints/whe_x'],
      ['POST', '/v1/webhooks/endpoints/whe_x/rotate-secret'],
      ['POST', '/v1/webhooks/endpoints/whe_x/test'],
      ['POST', '/v1/webhooks/endpoints/whe_x/recover'],
      ['GET', '/v1/webhooks/endpoints/whe_x/deliveries'],
      ['GET', '/v1/webhooks/deliveries/whd_x/attempts'],
      ['POST', '/v1/webhooks/deliveries/whd_x/retry'],
    ]) {
      const response = await keel.app.inject({ method: method as 'GET', url: url! });
      assert.equal(response.statusCode, 401, `${method} ${url}`);
      assert.equal(response.json().code, 'UNAUTHENTICATED');
    }
  });

  test('a key without webhooks:write may read but not change endpoints', async () => {
    const reader = await createOrgWithApiKey(keel.app, { permissions: ['webhooks:read'] });
    assert.equal((await call('GET', '/v1/webhooks/endpoints', reader.headers)).statusCode, 200);
    const denied = await call('POST', '/v1/webhooks/endpoints', reader.headers, { url: receiverUrl });
    assert.equal(denied.statusCode, 403);
    assert.equal(denied.json().code, 'FORBIDDEN');
  });

  test('another org’s endpoint answers 404 on every route', async () => {
    const endpoint = await createEndpoint();
    const delivery = (await call('POST', `/v1/webhooks/endpoints/${endpoint.id}/test`)).json();
    for (const [method, url, body] of [
      ['GET', `/v1/webhooks/endpoints/${endpoint.id}`],
      ['PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { description: 'mine now' }],
      ['DELETE', `/v1/webhooks/endpoints/${endpoint.id}`],
      ['POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, {}],
      ['POST', `/v1/webhooks/endpoints/${endpoint.id}/test`],
      ['POST', `/v1/webhooks/endpoints/${endpoint.id}/recover`, { since: '2026-01-01T00:00:00Z' }],
      ['GET', `/v1/webhooks/endpoints/${endpoint.id}/deliveries`],
      ['GET', `/v1/webhooks/deliveries/${delivery.id}/attempts`],
      ['POST', `/v1/webhooks/deliveries/${delivery.id}/retry`],
    ] as const) {
      const response = await call(method, url, stranger.headers, body);
      assert.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`);
    }
    const listed = await call('GET', '/v1/webhooks/endpoints', stranger.headers);
    assert.ok(!listed.json().data.some((e: { id: string }) => e.id === endpoint.id));
    assert.equal((await call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).statusCode, 200, 'untouched');
  });

  test('update, pause and delete an endpoint', async () => {
    const endpoint = await createEndpoint();
    const paused = await call('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, owner.headers, {
      enabled: false,
      description: 'paused',
      rateLimitPerSecond: 5,
    });
    assert.equal(paused.statusCode, 200);
    assert.equal(paused.json().enabled, false);
    assert.equal(paused.json().rateLimitPerSecond, 5);
    const empty = await call('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, owner.headers, {});
    assert.equal(empty.statusCode, 400);
    assert.equal((await call('DELETE', `/v1/webhooks/endpoints/${endpoint.id}`)).statusCode, 204);
    assert.equal((await call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).statusCode, 404);
  });

  test('rotating returns a new secret once and when the old one stops signing', async () => {
    const endpoint = await createEndpoint();
    const rotated = await call('POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, owner.headers, {
      graceSeconds: 600,
    });
    assert.equal(rotated.statusCode, 200);
    assert.notEqual(rotated.json().secret, endpoint.secret);
    assert.ok(rotated.json().previousSecretExpiresAt);
    const tooLong = await call('POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, owner.headers, {
      graceSeconds: 60 * 24 * 3600,
    });
    assert.equal(tooLong.statusCode, 400);
  });

  test('send a test event, list deliveries and attempts, retry and recover', async () => {
    const endpoint = await createEndpoint();
    const queued = await call('POST', `/v1/webhooks/endpoints/${endpoint.id}/test`);
    assert.equal(queued.statusCode, 202);
    assert.equal(queued.json().eventType, 'webhook.test');
    assert.equal(queued.json().status, 'pending');
    const deliveries = await call('GET', `/v1/webhooks/endpoints/${endpoint.id}/deliveries?status=pending`);
    assert.deepEqual(
      deliveries.json().data.map((d: { id: string }) => d.id),
      [queued.json().id],
    );
    const attempts = await call('GET', `/v1/webhooks/deliveries/${queued.json().id}/attempts`);
    assert.deepEqual(attempts.json(), { data: [] });
    const retried = await call('POST', `/v1/webhooks/deliveries/${queued.json().id}/retry`);
    assert.equal(retried.statusCode, 202);
    const recovered = await call('POST', `/v1/webhooks/endpoints/${endpoint.id}/recover`, owner.headers, {
      since: '2026-01-01T00:00:00Z',
    });
    assert.equal(recovered.statusCode, 202);
    assert.equal(recovered.json().requeued, 0, 'nothing had failed');
    const badSince = await call('POST', `/v1/webhooks/endpoints/${endpoint.id}/recover`, owner.headers, {
      since: 'yesterday',
    });
    assert.equal(badSince.statusCode, 400);
  });

  test('creating with an Idempotency-Key twice creates one endpoint', async () => {
    const headers = { ...owner.headers, 'idempotency-key': `create-${Date.now()}` };
    const first = await call('POST', '/v1/webhooks/endpoints', headers, { url: `${receiverUrl}/idem` });
    const second = await call('POST', '/v1/webhooks/endpoints', headers, { url: `${receiverUrl}/idem` });
    assert.equal(first.statusCode, 201);
    assert.equal(second.body, first.body);
    assert.equal(second.headers['idempotent-replayed'], 'true');
  });
});
