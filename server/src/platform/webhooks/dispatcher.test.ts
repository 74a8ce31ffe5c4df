import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { Type } from 'typebox';
import { createTestDatabase, type TestDatabase, testConfig } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { createSsrfGuard } from '../../infra/http/ssrf.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { createRuntime, type Runtime } from '../../infra/runtime.ts';
import { createEventsService, defineEvent, type EventsService } from '../events/index.ts';
import { createDispatcher, DELIVERY_LEASE_MS, type Dispatcher } from './dispatcher.ts';
import { DISABLE_AFTER_FAILING_MS } from './domain/retry.ts';
import { createSender, RESPONSE_EXCERPT_BYTES } from './sender.ts';
import { createWebhooksService, type WebhooksService } from './service.ts';

defineEvent({
  type: 'test_order.created',
  version: 1,
  description: 'A test event.',
  payload: Type.Object({ n: Type.Integer() }),
});
defineEvent({
  type: 'test_order.shipped',
  version: 1,
  description: 'Another test event.',
  payload: Type.Object({ n: Type.Integer() }),
});

interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

type Behaviour = (
  request: Received,
) => { status: number; body?: string; headers?: Record<string, string>; delayMs?: number } | 'hang';

/** A local webhook receiver whose answer each test chooses. */
async function receiver() {
  const received: Received[] = [];
  let behaviour: Behaviour = () => ({ status: 204 });
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const entry = { path: req.url ?? '/', headers: req.headers, body, at: Date.now() };
      received.push(entry);
      const answer = behaviour(entry);
      if (answer === 'hang') return;
      setTimeout(() => {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body ?? '');
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    received,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    behave(next: Behaviour) {
      behaviour = next;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const waitFor = async (predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('webhook delivery', () => {
  let database: TestDatabase;
  let runtime: Runtime;
  let events: EventsService;
  let webhooks: WebhooksService;
  let dispatcher: Dispatcher;
  let hooks: Awaited<ReturnType<typeof receiver>>;
  const clock = manualClock(new Date());
  let orgId: string;

  const emit = (type: string, n: number, org = orgId) =>
    runtime.database.transaction((tx) => events.emit(tx, org, [{ type, payload: { n } }]));
  const deliveries = (endpointId: string) =>
    runtime.database.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('endpoint_id', '=', endpointId)
      .execute();

  before(async () => {
    database = await createTestDatabase();
    runtime = await createRuntime(testConfig(database, { webhooks: { ssrfAllowlist: ['127.0.0.1'] } }), {
      clock,
      log: createLogger({ level: 'silent', pretty: false }),
    });
    events = createEventsService({ db: runtime.database.db, clock, newId: runtime.newId });
    const guard = createSsrfGuard({ allow: ['127.0.0.1'] });
    webhooks = createWebhooksService({ runtime, guard });
    dispatcher = createDispatcher({ runtime, events, sender: createSender(guard), random: () => 0.5 });
    hooks = await receiver();
    await dispatcher.start();
  });
  after(async () => {
    await dispatcher.stop();
    await hooks.close();
    await runtime.close();
    await database.drop();
  });
  beforeEach(() => {
    orgId = runtime.newId('org');
    hooks.received.length = 0;
    hooks.behave(() => ({ status: 204 }));
  });

  test('an event reaches each subscribed endpoint, signed per Standard Webhooks', async () => {
    const all = await webhooks.createEndpoint(orgId, { url: hooks.url('/all') });
    const shippedOnly = await webhooks.createEndpoint(orgId, {
      url: hooks.url('/shipped'),
      eventTypes: ['test_order.shipped'],
    });
    await emit('test_order.created', 1);
    await waitFor(() => hooks.received.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      hooks.received.map((r) => r.path),
      ['/all'],
      'the filtered endpoint did not get an event it did not subscribe to',
    );
    const [delivery] = hooks.received;
    const verified = new Webhook(all.secret).verify(
      delivery!.body,
      delivery!.headers as Record<string, string>,
    ) as {
      type: string;
      data: unknown;
      id: string;
    };
    assert.equal(verified.type, 'test_order.created');
    assert.deepEqual(verified.data, { n: 1 });
    assert.equal(delivery!.headers['webhook-id'], verified.id);
    assert.match(String(delivery!.headers['webhook-signature']), /^v1,[A-Za-z0-9+/=]+$/);
    assert.throws(() =>
      new Webhook(shippedOnly.secret).verify(delivery!.body, delivery!.headers as Record<string, string>),
    );
    await waitFor(async () => (await deliveries(all.endpoint.id))[0]?.status === 'succeeded');
  });

  test('a new endpoint receives events from its creation on, not the backlog before it', async () => {
    await emit('test_order.created', 100);
    clock.advance(1_000);
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/late') });
    await emit('test_order.created', 101);
    await waitFor(async () => (await deliveries(endpoint.id)).some((d) => d.status === 'succeeded'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await dispatcher.fanoutOnce();
    const sent = (await deliveries(endpoint.id)).map(
      (d) => (JSON.parse(d.body) as { data: { n: number } }).data.n,
    );
    assert.deepEqual(sent, [101]);
  });

  test('a receiver that is down, then back, gets every event; duplicates share a webhook-id', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/flaky') });
    let up = false;
    hooks.behave(() => (up ? { status: 200 } : { status: 503 }));
    for (let n = 0; n < 5; n++) await emit('test_order.created', n);
    await waitFor(
      async () =>
        (await deliveries(endpoint.id)).filter((d) => d.attempts === 1 && d.status === 'pending').length ===
        5,
    );
    // 1. The receiver comes back; the retries fall due 5 s (plus jitter) later.
    up = true;
    clock.advance(6_000);
    await waitFor(async () => (await deliveries(endpoint.id)).every((d) => d.status === 'succeeded'));
    const ids = hooks.received.filter((r) => r.path === '/flaky').map((r) => r.headers['webhook-id']);
    assert.equal(new Set(ids).size, 5, 'five distinct events');
    assert.equal(ids.length, 10, 'each sent twice: once failed, once delivered');
    const attempts = await runtime.database.db
      .selectFrom('webhook_attempts')
      .selectAll()
      .where('endpoint_id', '=', endpoint.id)
      .execute();
    assert.equal(attempts.length, 10);
    assert.ok(
      attempts.every((a) => a.duration_ms >= 0 && (a.response_status === 503 || a.response_status === 200)),
    );
  });

  test('Retry-After is honoured on 429', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/throttle') });
    hooks.behave(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    await emit('test_order.created', 1);
    await waitFor(async () => {
      const [first] = await deliveries(endpoint.id);
      return first?.attempts === 1 && first.status === 'pending';
    });
    const [delivery] = await deliveries(endpoint.id);
    const delay = delivery!.next_attempt_at.getTime() - clock.now().getTime();
    assert.ok(delay > 119_000 && delay <= 120_000, `next attempt in ${delay} ms`);
  });

  test('410 Gone disables the endpoint and emits webhook_endpoint.disabled', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/gone') });
    hooks.behave(() => ({ status: 410 }));
    await emit('test_order.created', 1);
    await waitFor(async () => !(await webhooks.getEndpoint(orgId, endpoint.id)).enabled);
    const disabled = await webhooks.getEndpoint(orgId, endpoint.id);
    assert.match(disabled.disabled_reason ?? '', /410/);
    assert.equal((await deliveries(endpoint.id))[0]?.status, 'failed');
    // The event committed with the change, but readers see it only once every transaction older
    // than it has ended (the stream's order guarantee), and other tests' transactions may still run.
    let stream: Awaited<ReturnType<typeof events.list>> = [];
    await waitFor(async () => {
      stream = await events.list(orgId, { limit: 10, types: ['webhook_endpoint.disabled'] });
      return stream.length > 0;
    });
    assert.deepEqual(stream[0]?.payload, {
      endpointId: endpoint.id,
      reason: 'the receiver answered 410 Gone',
    });
  });

  test('an endpoint failing for 5 days is disabled', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/dead') });
    hooks.behave(() => ({ status: 500 }));
    await emit('test_order.created', 1);
    await waitFor(async () => (await webhooks.getEndpoint(orgId, endpoint.id)).failing_since !== null);
    await emit('test_order.created', 2);
    await waitFor(async () =>
      (await deliveries(endpoint.id)).every((d) => d.attempts >= 1 && d.status === 'pending'),
    );
    clock.advance(DISABLE_AFTER_FAILING_MS);
    await waitFor(async () => !(await webhooks.getEndpoint(orgId, endpoint.id)).enabled);
    assert.match((await webhooks.getEndpoint(orgId, endpoint.id)).disabled_reason ?? '', /5 days/);
  });

  test('a success clears the failure clock', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/recovers') });
    let fail = true;
    hooks.behave(() => ({ status: fail ? 500 : 200 }));
    await emit('test_order.created', 1);
    await waitFor(async () => (await webhooks.getEndpoint(orgId, endpoint.id)).failing_since !== null);
    fail = false;
    clock.advance(6_000);
    await waitFor(async () => (await webhooks.getEndpoint(orgId, endpoint.id)).failing_since === null);
  });

  test('a slow endpoint does not hold back the others', async () => {
    const slow = await webhooks.createEndpoint(orgId, { url: hooks.url('/slow') });
    const fast = await webhooks.createEndpoint(orgId, { url: hooks.url('/fast') });
    hooks.behave((r) => (r.path === '/slow' ? { status: 200, delayMs: 3_000 } : { status: 200 }));
    const startedAt = Date.now();
    for (let n = 0; n < 20; n++) await emit('test_order.created', n);
    await waitFor(
      async () => (await deliveries(fast.endpoint.id)).filter((d) => d.status === 'succeeded').length === 20,
    );
    assert.ok(
      Date.now() - startedAt < 2_500,
      'the fast endpoint got all 20 while the slow one was still answering',
    );
    await waitFor(
      async () => (await deliveries(slow.endpoint.id)).every((d) => d.status === 'succeeded'),
      15_000,
    );
  });

  test('an ordered endpoint gets events one at a time, in order', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/ordered'), ordered: true });
    let first = true;
    hooks.behave((r) => {
      if (r.path === '/ordered' && first) {
        first = false;
        return { status: 500 };
      }
      return { status: 200, delayMs: 10 };
    });
    const ordered = () => hooks.received.filter((r) => r.path === '/ordered');
    for (let n = 0; n < 6; n++) await emit('test_order.created', n);
    await waitFor(() => ordered().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(ordered().length, 1, 'the failed first event holds back the rest');
    clock.advance(6_000);
    await waitFor(async () => (await deliveries(endpoint.id)).every((d) => d.status === 'succeeded'));
    const order = ordered().map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n);
    assert.deepEqual(order, [0, 0, 1, 2, 3, 4, 5]);
  });

  test('every attempt is logged with status, duration and a truncated excerpt', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/chatty') });
    hooks.behave(() => ({ status: 500, body: 'x'.repeat(5_000) }));
    await emit('test_order.created', 1);
    const [delivery] = await (async () => {
      await waitFor(async () => (await deliveries(endpoint.id))[0]?.attempts === 1);
      return deliveries(endpoint.id);
    })();
    await waitFor(async () => (await webhooks.listAttempts(orgId, delivery!.id)).length === 1);
    const [attempt] = await webhooks.listAttempts(orgId, delivery!.id);
    assert.equal(attempt!.response_status, 500);
    assert.equal(attempt!.response_excerpt!.length, RESPONSE_EXCERPT_BYTES);
    assert.ok(attempt!.duration_ms >= 0);
  });

  test('secret rotation signs with both secrets during the grace period', async () => {
    const { endpoint, secret: oldSecret } = await webhooks.createEndpoint(orgId, {
      url: hooks.url('/rotate'),
    });
    const { secret: newSecret } = await webhooks.rotateSecret(orgId, endpoint.id, 3600);
    // Earlier tests moved the test clock ahead of real time, so signatures are compared with
    // freshly computed ones rather than verified against the receiver's timestamp tolerance.
    const signature = (received: Received, secret: string) =>
      new Webhook(secret).sign(
        String(received.headers['webhook-id']),
        new Date(Number(received.headers['webhook-timestamp']) * 1000),
        received.body,
      );
    await emit('test_order.created', 1);
    await waitFor(() => hooks.received.some((r) => r.path === '/rotate'));
    const during = hooks.received.find((r) => r.path === '/rotate')!;
    assert.deepEqual(String(during.headers['webhook-signature']).split(' '), [
      signature(during, newSecret),
      signature(during, oldSecret),
    ]);
    // After the grace period, only the new secret signs.
    clock.advance(3_601_000);
    hooks.received.length = 0;
    await emit('test_order.created', 2);
    await waitFor(() => hooks.received.some((r) => r.path === '/rotate'));
    const afterGrace = hooks.received.find((r) => r.path === '/rotate')!;
    assert.deepEqual(String(afterGrace.headers['webhook-signature']).split(' '), [
      signature(afterGrace, newSecret),
    ]);
  });
  test('a test event reaches only the endpoint it was sent to', async () => {
    const a = await webhooks.createEndpoint(orgId, { url: hooks.url('/a') });
    await webhooks.createEndpoint(orgId, { url: hooks.url('/b') });
    await webhooks.sendTestEvent(orgId, a.endpoint.id);
    await waitFor(() => hooks.received.some((r) => r.path === '/a'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const mine = hooks.received.filter((r) => r.path === '/a' || r.path === '/b');
    assert.deepEqual(
      mine.map((r) => r.path),
      ['/a'],
    );
    assert.equal(JSON.parse(mine[0]!.body).type, 'webhook.test');
  });

  test('manual retry resends one delivery; recover requeues every failed one since a time', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/manual') });
    hooks.behave(() => ({ status: 500 }));
    const since = clock.now();
    await emit('test_order.created', 1);
    await emit('test_order.created', 2);
    await waitFor(async () => {
      const rows = await deliveries(endpoint.id);
      return rows.length === 2 && rows.every((d) => d.attempts === 1 && d.status === 'pending');
    });
    await runtime.database.db
      .updateTable('webhook_deliveries')
      .set({ status: 'failed' })
      .where('endpoint_id', '=', endpoint.id)
      .execute();
    hooks.behave(() => ({ status: 200 }));
    const [one] = await deliveries(endpoint.id);
    await webhooks.retryDelivery(orgId, one!.id);
    await waitFor(async () => (await webhooks.getDelivery(orgId, one!.id)).status === 'succeeded');
    assert.equal(await webhooks.recover(orgId, endpoint.id, since), 1);
    await waitFor(async () => (await deliveries(endpoint.id)).every((d) => d.status === 'succeeded'));
  });

  test('a per-endpoint rate limit spreads deliveries over seconds', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, {
      url: hooks.url('/limited'),
      rateLimitPerSecond: 2,
    });
    for (let n = 0; n < 5; n++) await emit('test_order.created', n);
    await waitFor(
      async () => (await deliveries(endpoint.id)).filter((d) => d.status === 'succeeded').length === 2,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(
      hooks.received.filter((r) => r.path === '/limited').length,
      2,
      'no more than 2 in the first second',
    );
    for (let second = 0; second < 3; second++) {
      clock.advance(1_000);
      await new Promise((resolve) => setTimeout(resolve, 350));
    }
    await waitFor(async () => (await deliveries(endpoint.id)).every((d) => d.status === 'succeeded'));
  });

  test('another org’s endpoints and deliveries are not found', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/mine') });
    const other = runtime.newId('org');
    await assert.rejects(webhooks.getEndpoint(other, endpoint.id), { code: 'NOT_FOUND' });
    await assert.rejects(webhooks.rotateSecret(other, endpoint.id), { code: 'NOT_FOUND' });
    await assert.rejects(webhooks.listDeliveries(other, endpoint.id, { limit: 10 }), { code: 'NOT_FOUND' });
    assert.deepEqual((await webhooks.listEndpoints(other, { limit: 10 })).data, []);
  });

  test('endpoint URLs that reach private addresses are refused', async () => {
    const strict = createWebhooksService({ runtime, guard: createSsrfGuard({ allow: [] }) });
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://169.254.169.254/latest',
      'http://10.0.0.1/',
      'ftp://example.com/',
    ]) {
      await assert.rejects(strict.createEndpoint(orgId, { url }), { code: 'VALIDATION_FAILED' }, url);
    }
    await assert.rejects(
      strict.createEndpoint(orgId, { url: 'https://example.com', eventTypes: ['no.such_type'] }),
      {
        code: 'VALIDATION_FAILED',
      },
    );
  });

  test('a delivery to a host that resolves to a blocked address fails without connecting', async () => {
    const guard = createSsrfGuard({ allow: [] });
    const sender = createSender(guard);
    const result = await sender.send({
      url: hooks.url('/x').replace('127.0.0.1', 'localhost'),
      messageId: 'evt_1',
      body: '{}',
      secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      timestamp: new Date(),
    });
    sender.close();
    assert.equal(result.status, undefined);
    assert.match(result.error ?? '', /not a public address/);
    assert.equal(hooks.received.length, 0);
  });

  test('a delivery whose worker died mid-send is claimed again after its lease', async () => {
    const { endpoint } = await webhooks.createEndpoint(orgId, { url: hooks.url('/lease') });
    // 1. Simulate a worker that claimed the delivery and died: status sending, lease running.
    await dispatcher.stop();
    await emit('test_order.created', 1);
    // The event becomes readable once older transactions in the cluster end: fan out until it has.
    await waitFor(async () => {
      await dispatcher.fanoutOnce();
      return (await deliveries(endpoint.id)).length === 1;
    });
    await runtime.database.db
      .updateTable('webhook_deliveries')
      .set({
        status: 'sending',
        attempts: 1,
        locked_until: new Date(clock.now().getTime() + DELIVERY_LEASE_MS),
      })
      .where('endpoint_id', '=', endpoint.id)
      .execute();
    dispatcher = createDispatcher({
      runtime,
      events,
      sender: createSender(createSsrfGuard({ allow: ['127.0.0.1'] })),
      random: () => 0.5,
    });
    await dispatcher.start();
    // 2. While the lease runs, nobody sends it.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(hooks.received.filter((r) => r.path === '/lease').length, 0);
    // 3. Once it runs out, it is delivered.
    clock.advance(DELIVERY_LEASE_MS + 1);
    await waitFor(async () => (await deliveries(endpoint.id))[0]?.status === 'succeeded');
    assert.equal(hooks.received.filter((r) => r.path === '/lease').length, 1);
    assert.equal((await deliveries(endpoint.id))[0]?.attempts, 2);
  });
});
