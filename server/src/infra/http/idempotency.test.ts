import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Type } from 'typebox';
import { createTestDatabase, type TestDatabase, testConfig } from '../../../test/harness.ts';
import { manualClock } from '../clock.ts';
import { createRuntime, type Runtime } from '../runtime.ts';
import {
  IDEMPOTENCY_IN_PROGRESS_STALE_MS,
  IDEMPOTENCY_KEY_TTL_MS,
  idempotencyJobs,
  idempotencyPlugin,
  pruneExpiredIdempotencyKeys,
} from './idempotency.ts';
import { type App, createPipeline } from './pipeline.ts';

/**
 * The plugin is exercised on a pipeline with test routes, since it guards routes that modules
 * add. Until authentication lands, the test routes take their org from an `x-test-org` header.
 */
describe('Idempotency-Key', () => {
  let database: TestDatabase;
  let runtime: Runtime;
  let app: App;
  const clock = manualClock('2026-11-21T12:00:00Z');
  let sideEffects = 0;
  let release: (() => void) | undefined;

  before(async () => {
    database = await createTestDatabase();
    runtime = await createRuntime(testConfig(database), { clock });
    app = createPipeline(runtime.config, runtime);
    app.addHook('onRequest', async (request) => {
      request.orgId = request.headers['x-test-org'] as string | undefined;
    });
    await app.register(idempotencyPlugin, { runtime });
    app.post(
      '/v1/things',
      { config: { idempotent: true }, schema: { body: Type.Object({ amount: Type.String() }) } },
      async (request, reply) => {
        sideEffects += 1;
        if (request.headers['x-test-slow']) await new Promise<void>((resolve) => (release = resolve));
        if (request.headers['x-test-fail']) throw new Error('downstream outage');
        reply.header('location', `/v1/things/${sideEffects}`);
        return reply.code(201).send({ id: sideEffects, amount: request.body.amount });
      },
    );
    app.post('/v1/plain', async () => ({ id: ++sideEffects }));
    await app.ready();
  });
  after(async () => {
    await app.close();
    await runtime.close();
    await database.drop();
  });

  const send = (key: string, body: object, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/things',
      headers: { 'idempotency-key': key, 'x-test-org': 'org_a', ...headers },
      payload: body,
    });

  test('a retried request replays the first response without running again', async () => {
    const before = sideEffects;
    const first = await send('k-replay', { amount: '10' });
    const second = await send('k-replay', { amount: '10' });
    assert.equal(first.statusCode, 201);
    assert.equal(second.statusCode, 201);
    assert.equal(second.body, first.body);
    assert.equal(second.headers.location, first.headers.location);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(sideEffects, before + 1);
  });

  test('the same key with a different body answers 409 IDEMPOTENCY_KEY_REUSED', async () => {
    await send('k-mismatch', { amount: '10' });
    const response = await send('k-mismatch', { amount: '11' });
    assert.equal(response.statusCode, 409);
    assert.equal(response.json().code, 'IDEMPOTENCY_KEY_REUSED');
  });

  test('a duplicate sent while the first is in flight answers 409 in progress, and one runs', async () => {
    const before = sideEffects;
    const first = send('k-concurrent', { amount: '5' }, { 'x-test-slow': '1' });
    while (!release) await new Promise((resolve) => setTimeout(resolve, 5));
    const duplicate = await send('k-concurrent', { amount: '5' });
    assert.equal(duplicate.statusCode, 409);
    assert.equal(duplicate.json().code, 'IDEMPOTENCY_REQUEST_IN_PROGRESS');
    assert.equal(duplicate.headers['retry-after'], '1');
    release();
    release = undefined;
    assert.equal((await first).statusCode, 201);
    assert.equal(sideEffects, before + 1);
  });

  test('keys are scoped per org: another org with the same key runs its own request', async () => {
    const a = await send('k-shared', { amount: '1' });
    const b = await send('k-shared', { amount: '1' }, { 'x-test-org': 'org_b' });
    assert.notEqual(a.json().id, b.json().id);
    assert.equal(b.headers['idempotent-replayed'], undefined);
  });

  test('a 5xx answer releases the key so the retry runs again', async () => {
    const failed = await send('k-5xx', { amount: '1' }, { 'x-test-fail': '1' });
    assert.equal(failed.statusCode, 500);
    const retried = await send('k-5xx', { amount: '1' });
    assert.equal(retried.statusCode, 201);
    assert.equal(retried.headers['idempotent-replayed'], undefined);
  });

  test('a key left in progress by a dead process can be claimed again once stale', async () => {
    await runtime.database.db
      .insertInto('idempotency_keys')
      .values({
        org_id: 'org_a',
        key: 'k-orphan',
        method: 'POST',
        route: '/v1/things',
        request_hash: 'whatever',
        status: 'in_progress',
        response_status: null,
        response_headers: null,
        response_body: null,
        created_at: new Date(clock.now().getTime() - IDEMPOTENCY_IN_PROGRESS_STALE_MS - 1),
        expires_at: new Date(clock.now().getTime() + IDEMPOTENCY_KEY_TTL_MS),
      })
      .execute();
    const response = await send('k-orphan', { amount: '1' });
    assert.equal(response.statusCode, 201);
  });

  test('an invalid key answers 400 naming the header', async () => {
    const response = await send('has spaces', { amount: '1' });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().errors[0].in, 'headers');
  });

  test('routes that do not opt in ignore the header', async () => {
    const first = await app.inject({
      method: 'POST',
      url: '/v1/plain',
      headers: { 'idempotency-key': 'k-plain', 'x-test-org': 'org_a' },
    });
    const second = await app.inject({
      method: 'POST',
      url: '/v1/plain',
      headers: { 'idempotency-key': 'k-plain', 'x-test-org': 'org_a' },
    });
    assert.notEqual(first.json().id, second.json().id);
  });

  test('the pruning job deletes expired keys only', async () => {
    await send('k-old', { amount: '1' });
    clock.advance(IDEMPOTENCY_KEY_TTL_MS / 2);
    await send('k-young', { amount: '1' });
    clock.advance(IDEMPOTENCY_KEY_TTL_MS / 2 + 1);
    const [job] = idempotencyJobs(runtime);
    assert.ok(job?.cron, 'the job runs on a schedule');
    await job.handler({}, { log: runtime.log, jobId: '1', attempt: 1 });
    const keys = (await runtime.database.db.selectFrom('idempotency_keys').select('key').execute()).map(
      (r) => r.key,
    );
    assert.ok(!keys.includes('k-old'));
    assert.ok(keys.includes('k-young'));
    assert.equal(await pruneExpiredIdempotencyKeys(runtime), 0, 'nothing left to prune');
  });
});
