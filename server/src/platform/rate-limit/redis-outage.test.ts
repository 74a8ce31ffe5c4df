import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { accessOf, createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';

/**
 * Redis going away mid-run, on a redis-server this test starts and kills itself (so the shared
 * Redis of the run is never touched). Skipped where redis-server is not installed.
 */
const REDIS_SERVER = 'redis-server';
const SKIP_WITHOUT_REDIS_SERVER: string | false =
  spawnSync(REDIS_SERVER, ['--version']).error === undefined ? false : `${REDIS_SERVER} is not on PATH`;
/** Longest a request may take while Redis is down: the limiter's timeout plus slack. */
const ANSWER_WITHIN_MS = 1_500;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('when Redis goes down mid-run', { skip: SKIP_WITHOUT_REDIS_SERVER }, () => {
  let database: TestDatabase;
  let port: number;
  let redis: ChildProcess;
  let open: TestApp;
  let closed: TestApp;
  before(async () => {
    database = await createTestDatabase();
    port = await freePort();
    redis = await startRedis(port);
    const url = `redis://127.0.0.1:${port}`;
    open = await buildTestApp(database, {
      config: { redis: { url }, rateLimit: { onRedisFailure: 'open' } },
    });
    closed = await buildTestApp(database, {
      config: { redis: { url }, rateLimit: { onRedisFailure: 'closed' } },
    });
  });
  after(async () => {
    await stopRedis(redis);
    await open.close();
    await closed.close();
    await database.drop();
  });

  const timed = async (app: TestApp, headers: Record<string, string> = {}) => {
    const startedAt = performance.now();
    const response = await app.app.inject({ method: 'GET', url: '/v1/org', headers });
    return { response, ms: performance.now() - startedAt };
  };

  test('the API keeps answering: fail open limits per replica, fail closed answers 503; then it recovers', async () => {
    // 1. Healthy: a key limited to 5 a minute spends two units in Redis.
    const key = await createOrgWithApiKey(open.app);
    await accessOf(open.app).apiKeys.update({ permissions: new Set() }, key.orgId, key.keyId, {
      rateLimitPerMinute: 5,
    });
    for (let i = 0; i < 2; i++) assert.equal((await timed(open, key.headers)).response.statusCode, 200);
    assert.equal((await timed(closed, key.headers)).response.statusCode, 200);

    // 2. Redis dies.
    await stopRedis(redis);

    // 3. Fail open: every request is answered quickly; the in-memory limiter still enforces the
    //    key's 5 a minute (counted afresh, per replica); the key still authenticates (Postgres).
    const statuses = [];
    for (let i = 0; i < 7; i++) {
      const { response, ms } = await timed(open, key.headers);
      assert.ok(ms < ANSWER_WITHIN_MS, `request ${i} took ${ms} ms`);
      statuses.push(response.statusCode);
      if (response.statusCode === 200)
        assert.match(String(response.headers['ratelimit-policy']), /"key";q=5/);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    const anonymous = await timed(open);
    assert.equal(anonymous.response.statusCode, 401, 'unauthenticated routes answer too');
    assert.ok(anonymous.ms < ANSWER_WITHIN_MS);

    // 4. Fail closed: refused, quickly, with Retry-After.
    for (let i = 0; i < 3; i++) {
      const { response, ms } = await timed(closed, key.headers);
      assert.ok(ms < ANSWER_WITHIN_MS, `closed request ${i} took ${ms} ms`);
      assert.equal(response.statusCode, 503);
      assert.equal(response.json().code, 'SERVICE_UNAVAILABLE');
      assert.equal(response.headers['retry-after'], '1');
    }

    // 5. Redis comes back (empty): limits are decided in Redis again.
    redis = await startRedis(port);
    const deadline = Date.now() + 10_000;
    let recovered = false;
    while (Date.now() < deadline && !recovered) {
      const { response } = await timed(closed, key.headers);
      recovered = response.statusCode === 200;
      if (!recovered) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(recovered, 'the closed replica serves again once Redis is back');
    const metrics = await open.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /keel_rate_limit_denied_total\{policy="key"\} 2/);
  });
});
