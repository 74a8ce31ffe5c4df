import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SKIP_WITHOUT_REDIS, testRedisUrl } from '../../../test/harness.ts';
import { manualClock } from '../clock.ts';
import { createLogger } from '../observability/logger.ts';
import { createMemoryStore, createRedisStore, type KeyValueStore, type Script } from './kv.ts';

const log = createLogger({ level: 'silent', pretty: false });
const waitFor = async (predicate: () => boolean, timeoutMs = 2_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

/** Sets the key to ARGV[2] if it holds ARGV[1] ('' for absent); 1 when it did. */
const compareAndSet: Script<number> = {
  name: 'test_compare_and_set',
  lua: `
    local current = redis.call('GET', KEYS[1]) or ''
    if current ~= ARGV[1] then return 0 end
    redis.call('SET', KEYS[1], ARGV[2])
    return 1`,
  memory: (data, keys, args) => {
    if ((data.get(keys[0]!) ?? '') !== String(args[0])) return 0;
    data.set(keys[0]!, String(args[1]));
    return 1;
  },
};

/** The same guarantees, proven against both implementations. */
function contract(
  name: string,
  make: () => { a: KeyValueStore; b: KeyValueStore; expire: (ms: number) => Promise<void> },
  skip: string | false,
) {
  describe(`${name} key-value store`, { skip }, () => {
    const stores = skip ? undefined : make();
    const run = Math.random().toString(36).slice(2);
    after(async () => {
      await stores?.a.close();
      await stores?.b.close();
    });

    test('set and get round-trip; delete removes', async () => {
      const { a } = stores!;
      assert.equal(await a.get(`${run}:missing`), null);
      assert.equal(await a.set(`${run}:k`, 'v'), true);
      assert.equal(await a.get(`${run}:k`), 'v');
      await a.delete(`${run}:k`);
      assert.equal(await a.get(`${run}:k`), null);
    });

    test('onlyIfAbsent does not overwrite', async () => {
      const { a } = stores!;
      assert.equal(await a.set(`${run}:nx`, 'first', { onlyIfAbsent: true }), true);
      assert.equal(await a.set(`${run}:nx`, 'second', { onlyIfAbsent: true }), false);
      assert.equal(await a.get(`${run}:nx`), 'first');
    });

    test('values expire after their TTL', async () => {
      const { a, expire } = stores!;
      await a.set(`${run}:ttl`, 'v', { ttlMs: 50 });
      await expire(80);
      assert.equal(await a.get(`${run}:ttl`), null);
    });

    test('increment counts, and its TTL is set by the first increment only', async () => {
      const { a, expire } = stores!;
      assert.equal(await a.increment(`${run}:n`, 2, 100), 2);
      await expire(60);
      assert.equal(await a.increment(`${run}:n`, 3, 100), 5);
      await expire(60);
      assert.equal(
        await a.get(`${run}:n`),
        null,
        'expired 100 ms after creation, not after the last increment',
      );
    });

    test('a script runs atomically and its memory twin answers as the Lua does', async () => {
      const { a } = stores!;
      const key = `${run}:cas`;
      assert.equal(await a.run(compareAndSet, [key], ['', 'one']), 1, 'absent matches ""');
      assert.equal(await a.run(compareAndSet, [key], ['wrong', 'two']), 0);
      assert.equal(await a.get(key), 'one', 'the store sees the script’s write under its own key');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => a.run(compareAndSet, [key], ['one', `racer-${i}`])),
      );
      assert.equal(results.filter((won) => won === 1).length, 1, 'exactly one racer wins');
    });

    test('a message published on one store reaches subscribers of another', async () => {
      const { a, b } = stores!;
      const received: string[] = [];
      const unsubscribe = await b.subscribe(`${run}:channel`, (message) => received.push(message));
      await a.publish(`${run}:channel`, 'hello');
      await waitFor(() => received.length === 1);
      assert.deepEqual(received, ['hello']);
      await unsubscribe();
      await a.publish(`${run}:channel`, 'after');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(received, ['hello']);
    });
  });
}

contract(
  'memory',
  () => {
    const clock = manualClock();
    // In memory, "another store" is the same process: one store stands for both sides.
    const store = createMemoryStore(clock);
    return {
      a: store,
      b: store,
      expire: async (ms) => {
        clock.advance(ms);
      },
    };
  },
  false,
);

contract(
  'redis',
  () => ({
    a: createRedisStore(testRedisUrl!, log),
    b: createRedisStore(testRedisUrl!, log),
    expire: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  }),
  SKIP_WITHOUT_REDIS,
);

test('a redis store that cannot reach its server fails commands quickly instead of hanging', async () => {
  const store = createRedisStore('redis://127.0.0.1:1', log);
  const startedAt = Date.now();
  await assert.rejects(store.get('anything'));
  assert.ok(Date.now() - startedAt < 5_000);
  await store.close();
});
