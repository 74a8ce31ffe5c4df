import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { SKIP_WITHOUT_REDIS, testRedisUrl } from '../../../test/harness.ts';
import { manualClock, systemClock } from '../../infra/clock.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { createMemoryStore, createRedisStore, type KeyValueStore } from '../../infra/redis/kv.ts';
import {
  createExactLimiter,
  createLeasingLimiter,
  LEASE_PREFETCH_FRACTION,
  LEASE_TTL_MS,
  type LimitRule,
  leaseSize,
  type RateLimiter,
  withFailover,
} from './limiter.ts';
import { gcraArguments, gcraScript } from './scripts.ts';

const log = createLogger({ level: 'silent', pretty: false });
const MINUTE_MS = 60_000;
/**
 * Accuracy tests use a day-long window: GCRA refills continuously (a per-minute quota of 1000
 * earns a unit every 60 ms), so over a test that takes a second a minute window would
 * legitimately admit a few more than L.
 */
const DAY_MS = 24 * 60 * MINUTE_MS;
/** Accuracy tests wait for Redis however loaded the machine is; the failover tests test timeouts. */
const PATIENT = { timeoutMs: 30_000 };
const run = randomBytes(4).toString('hex');
const rule = (name: string, limit: number, windowMs = MINUTE_MS): LimitRule => ({
  name,
  key: `test:${run}:{${name}}:${randomBytes(4).toString('hex')}`,
  limit,
  windowMs,
});

async function admitted(
  limiter: RateLimiter,
  rules: readonly LimitRule[],
  attempts: number,
): Promise<number> {
  const decisions = await Promise.all(Array.from({ length: attempts }, () => limiter.check(rules)));
  return decisions.filter((decision) => decision.allowed).length;
}

describe('rate limiter, in memory (the embedded default)', () => {
  const clock = manualClock();
  const store = createMemoryStore(clock);
  const limiter = createExactLimiter(store);
  after(() => store.close());

  test('N parallel requests against a limit of L admit exactly L', async () => {
    assert.equal(await admitted(limiter, [rule('key', 50)], 200), 50);
  });

  test('a denial by one limit consumes nothing from the other', async () => {
    const key = rule('key', 1);
    const org = rule('org', 10);
    assert.equal((await limiter.check([key, org])).allowed, true);
    const denied = await limiter.check([key, org]);
    assert.equal(denied.allowed, false);
    assert.equal(denied.outcomes[1]!.remaining, 9, 'the org kept the unit the key denial did not use');
    assert.ok(denied.outcomes[0]!.retryAfterMs > 0);
    assert.equal(denied.outcomes[1]!.retryAfterMs, 0);
  });

  test('units come back at the limit’s rate', async () => {
    const key = rule('key', 60);
    assert.equal(await admitted(limiter, [key], 100), 60);
    clock.advance(1_000);
    assert.equal(await admitted(limiter, [key], 5), 1, 'one per second');
  });
});

/** The store, with `before` run ahead of each script call (throwing fails the call). */
function withScriptCalls(store: KeyValueStore, before: () => void): KeyValueStore {
  return {
    ...store,
    run: (async (...args: Parameters<KeyValueStore['run']>) => {
      before();
      return store.run(...args);
    }) as KeyValueStore['run'],
  };
}

describe('local-first decisions without a promise (tryCheck)', () => {
  test('spend the units of a lease, then defer to check; never more than the lease', async () => {
    const clock = manualClock();
    const limiter = createLeasingLimiter(createMemoryStore(clock), clock);
    const rules = [rule('key', 1_000), rule('org', 100_000)];
    assert.equal(limiter.tryCheck!(rules), undefined, 'no lease yet: the store must be asked');
    assert.equal((await limiter.check(rules)).allowed, true);
    const lease = leaseSize(rules);
    let spent = 0;
    for (let decision = limiter.tryCheck!(rules); decision; decision = limiter.tryCheck!(rules)) {
      assert.equal(decision.allowed, true);
      assert.equal(decision.outcomes.length, 2);
      spent += 1;
    }
    assert.equal(spent, lease - 1, 'the rest of the lease taken by check, and no more');
    assert.equal((await limiter.check(rules)).allowed, true, 'check takes a new lease');
    assert.ok(limiter.tryCheck!(rules)?.allowed);
    clock.advance(LEASE_TTL_MS);
    assert.equal(limiter.tryCheck!(rules), undefined, 'an expired lease is never spent');
  });

  test('half way through a lease the next one is fetched in the background', async () => {
    const clock = manualClock();
    const limiter = createLeasingLimiter(createMemoryStore(clock), clock);
    const rules = [rule('key', 1_000)];
    const lease = leaseSize(rules);
    assert.equal((await limiter.check(rules)).allowed, true);
    const low = Math.floor(lease * LEASE_PREFETCH_FRACTION);
    for (let i = 1; i < lease - low; i++) assert.ok(limiter.tryCheck!(rules)?.allowed);
    // The reservation runs while the rest of the lease is spent.
    await new Promise(setImmediate);
    let spent = 0;
    while (limiter.tryCheck!(rules)?.allowed) spent += 1;
    assert.equal(spent, low + lease, 'the rest of the first lease, then all of the next, without waiting');
  });

  test('a lease of one unit is never fetched ahead (quotas under 200: exact mode)', async () => {
    const clock = manualClock();
    let calls = 0;
    const counting = withScriptCalls(createMemoryStore(clock), () => {
      calls += 1;
    });
    const limiter = createLeasingLimiter(counting, clock);
    const rules = [rule('key', 100)];
    assert.equal(leaseSize(rules), 1);
    for (let i = 0; i < 5; i++) assert.equal((await limiter.check(rules)).allowed, true);
    await new Promise(setImmediate);
    assert.equal(calls, 5, 'one store call per request, none ahead');
  });

  test('a denial is never decided without the store', async () => {
    const clock = manualClock();
    const limiter = createLeasingLimiter(createMemoryStore(clock), clock);
    const rules = [rule('key', 1)];
    assert.equal((await limiter.check(rules)).allowed, true);
    assert.equal(limiter.tryCheck!(rules), undefined);
    assert.equal((await limiter.check(rules)).allowed, false);
    assert.equal(limiter.tryCheck!(rules), undefined);
  });

  test('the failover wrapper decides locally only while the shared store is healthy', async () => {
    const clock = manualClock();
    let failing = false;
    const flaky = withScriptCalls(createMemoryStore(clock), () => {
      if (failing) throw new Error('connection refused');
    });
    const limiter = withFailover({
      shared: createLeasingLimiter(flaky, clock),
      local: createExactLimiter(createMemoryStore(clock)),
      mode: 'open',
      clock,
      log,
    });
    const rules = [rule('key', 1_000)];
    assert.equal((await limiter.check(rules)).allowed, true);
    assert.ok(limiter.tryCheck!(rules)?.allowed, 'healthy: from the lease');
    clock.advance(LEASE_TTL_MS);
    failing = true;
    const degraded = await limiter.check(rules);
    assert.equal(degraded.degraded, 'local');
    assert.equal(limiter.tryCheck!(rules), undefined, 'degraded: every decision goes through check');
  });
});

describe('rate limiter, on Redis', { skip: SKIP_WITHOUT_REDIS }, () => {
  const stores: KeyValueStore[] = [];
  const redis = () => {
    const store = createRedisStore(testRedisUrl!, log);
    stores.push(store);
    return store;
  };
  after(async () => {
    for (const store of stores) await store.close();
  });

  test('the Lua script and its TypeScript twin decide the same on the same inputs', async () => {
    const onRedis = redis();
    const inMemory = createMemoryStore(manualClock());
    try {
      const buckets = [rule('key', 7, 10_000), rule('org', 20, 30_000)];
      let nowMs = 1_800_000_000_000;
      for (let step = 0; step < 200; step++) {
        nowMs += Math.floor(Math.random() * 1_500);
        const want = 1 + Math.floor(Math.random() * 4);
        const args = gcraArguments(buckets, want, Math.random() < 0.5 ? 1 : want, nowMs);
        const keys = buckets.map((bucket) => bucket.key);
        const [fromLua, fromTypeScript] = await Promise.all([
          onRedis.run(gcraScript, keys, args),
          inMemory.run(gcraScript, keys, args),
        ]);
        assert.deepEqual(fromLua, fromTypeScript, `step ${step} at ${nowMs} wanting ${want}`);
      }
    } finally {
      await inMemory.close();
    }
  });

  test('N parallel requests from two replicas against a limit of L never admit more than L', async () => {
    const replicas = [createExactLimiter(redis(), PATIENT), createExactLimiter(redis(), PATIENT)];
    const limit = 100;
    const rules = [rule('key', limit, DAY_MS), rule('org', 10_000, DAY_MS)];
    const counts = await Promise.all(replicas.map((limiter) => admitted(limiter, rules, 150)));
    assert.equal(counts[0]! + counts[1]!, limit, `admitted ${counts.join(' + ')}`);
  });

  test('a denial by one limit consumes nothing from the other, across replicas', async () => {
    const [a, b] = [createExactLimiter(redis(), PATIENT), createExactLimiter(redis(), PATIENT)];
    const key = rule('key', 1);
    const org = rule('org', 10);
    assert.equal((await a.check([key, org])).allowed, true);
    assert.equal((await b.check([key, org])).allowed, false);
    const other = rule('key', 100);
    const next = await a.check([other, org]);
    assert.equal(next.outcomes[1]!.remaining, 8, 'org spent 2 units for 2 admitted requests, not 3');
  });

  test('local-first leases never admit more than L, and strand at most 1.5 leases per replica', async () => {
    const replicas = [
      createLeasingLimiter(redis(), systemClock, PATIENT),
      createLeasingLimiter(redis(), systemClock, PATIENT),
    ];
    const limit = 1_000;
    const rules = [rule('key', limit, DAY_MS), rule('org', 100_000, DAY_MS)];
    const lease = leaseSize(rules);
    assert.equal(lease, 10);
    const counts = await Promise.all(replicas.map((limiter) => admitted(limiter, rules, 800)));
    const total = counts[0]! + counts[1]!;
    assert.ok(total <= limit, `admitted ${total} > ${limit}`);
    // What is left of one lease when the store runs dry, plus the next one fetched ahead.
    const stranded = replicas.length * Math.floor(lease * (1 + LEASE_PREFETCH_FRACTION));
    assert.ok(total >= limit - stranded, `admitted ${total}: more stranded than the bound`);
  });

  test('a leased unit is given up after LEASE_TTL_MS, never spent late', async () => {
    const clock = manualClock();
    const limiter = createLeasingLimiter(redis(), clock, PATIENT);
    const rules = [rule('key', 1_000)];
    assert.equal((await limiter.check(rules)).allowed, true);
    const before = (await limiter.check(rules)).outcomes[0]!.remaining;
    clock.advance(LEASE_TTL_MS);
    const after = await limiter.check(rules);
    assert.equal(after.allowed, true);
    assert.ok(after.outcomes[0]!.remaining < before, 'a fresh lease was taken from Redis');
  });
});

describe('failover when the shared store fails', () => {
  const broken: RateLimiter = {
    check: () => Promise.reject(new Error('connection refused')),
    close: async () => {},
  };
  /** A store whose scripts never answer, like a Redis that accepts connections and then hangs. */
  const hangingStore = (): KeyValueStore => ({
    ...createMemoryStore(manualClock()),
    run: () => new Promise(() => {}),
  });

  test('fail open: requests are limited per replica in memory, without waiting', async () => {
    const store = createMemoryStore(manualClock());
    const limiter = withFailover({
      shared: broken,
      local: createExactLimiter(store),
      mode: 'open',
      clock: systemClock,
      log,
    });
    const rules = [rule('key', 3)];
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await limiter.check(rules));
    assert.deepEqual(
      decisions.map((d) => d.allowed),
      [true, true, true, false, false],
    );
    assert.ok(decisions.every((d) => d.degraded === 'local'));
    assert.equal(limiter.healthy, false);
    await store.close();
  });

  test('fail closed: requests are refused as unavailable', async () => {
    const limiter = withFailover({
      shared: broken,
      local: createExactLimiter(createMemoryStore(manualClock())),
      mode: 'closed',
      clock: systemClock,
      log,
    });
    const decision = await limiter.check([rule('key', 3)]);
    assert.equal(decision.allowed, false);
    assert.equal(decision.degraded, 'unavailable');
  });

  test('a store that hangs costs one request the timeout, and the next ones nothing', async () => {
    const store = createMemoryStore(manualClock());
    const limiter = withFailover({
      shared: createExactLimiter(hangingStore()),
      local: createExactLimiter(store),
      mode: 'open',
      clock: systemClock,
      log,
    });
    const rules = [rule('key', 100)];
    let startedAt = performance.now();
    assert.equal((await limiter.check(rules)).degraded, 'local');
    assert.ok(performance.now() - startedAt < 1_000);
    startedAt = performance.now();
    for (let i = 0; i < 10; i++) await limiter.check(rules);
    assert.ok(performance.now() - startedAt < 50, 'the breaker is open: Redis is not waited on');
    await store.close();
  });
});
