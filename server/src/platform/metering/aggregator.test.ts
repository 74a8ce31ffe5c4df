import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import client from 'prom-client';
import { manualClock } from '../../infra/clock.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import {
  type Counter,
  createUsageAggregator,
  FLUSH_MAX_COUNTERS,
  type FlushSink,
  MAX_BUFFERED_COUNTERS,
} from './aggregator.ts';

const quiet = createLogger({ level: 'silent', pretty: false });

/** A sink that keeps what it was given, and fails while `failing` is set. */
function memorySink() {
  const written: Array<{ orgId: string; counter: Counter }> = [];
  const state = { failing: false, calls: 0 };
  const sink: FlushSink = async (orgId, counters) => {
    state.calls += 1;
    await new Promise((resolve) => setImmediate(resolve));
    if (state.failing) throw new Error('database unavailable');
    for (const counter of counters) written.push({ orgId, counter: { ...counter } });
  };
  const total = (filter: (entry: { orgId: string; counter: Counter }) => boolean = () => true) =>
    written.filter(filter).reduce((sum, entry) => sum + entry.counter.count, 0);
  return { sink, written, state, total };
}

function aggregatorWith(
  sink: FlushSink,
  options: { clock?: ReturnType<typeof manualClock>; log?: typeof quiet } = {},
) {
  return createUsageAggregator({
    sink,
    clock: options.clock ?? manualClock('2026-11-23T10:15:00Z'),
    log: options.log ?? quiet,
    registry: new client.Registry(),
    intervalMs: 60_000,
  });
}

describe('usage aggregator', () => {
  test('counts are exact per org, key, route and hour after many adds and one flush', async () => {
    const { sink, written, total } = memorySink();
    const aggregator = aggregatorWith(sink);
    for (let index = 0; index < 10_000; index += 1) {
      aggregator.add(
        `org_${index % 3}`,
        'api_requests',
        'count',
        `key_${index % 7}`,
        `GET /r${index % 5}`,
        1,
      );
    }
    assert.equal(aggregator.bufferedCounters, 3 * 7 * 5, 'one counter per distinct org, key and route');
    assert.equal(await aggregator.flush(), 0);
    assert.equal(total(), 10_000);
    assert.equal(
      total((entry) => entry.orgId === 'org_0'),
      3_334,
    );
    assert.equal(written.length, 105, 'each counter is written once');
    assert.equal(aggregator.bufferedCounters, 0);
    await aggregator.close();
  });

  test('usage in different UTC hours goes to different counters', async () => {
    const clock = manualClock('2026-11-23T10:59:59Z');
    const { sink, written } = memorySink();
    const aggregator = aggregatorWith(sink, { clock });
    aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    clock.advance(1_000);
    aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    await aggregator.flush();
    assert.deepEqual(written.map((entry) => new Date(entry.counter.hourMs).toISOString()).sort(), [
      '2026-11-23T10:00:00.000Z',
      '2026-11-23T11:00:00.000Z',
    ]);
    await aggregator.close();
  });

  test('sum and max follow the values added', async () => {
    const { sink, written } = memorySink();
    const aggregator = aggregatorWith(sink);
    for (const value of [5, 20, 7])
      aggregator.add('org_a', 'gateway.compute_units', 'sum', 'key_a', '', value);
    await aggregator.flush();
    assert.deepEqual(
      written.map(({ counter }) => [counter.count, counter.sum, counter.max]),
      [[3, 32, 20]],
    );
    await aggregator.close();
  });

  test('when a flush fails, the counts stay buffered and the next flush writes them all', async () => {
    const { sink, state, total } = memorySink();
    const aggregator = aggregatorWith(sink);
    for (let index = 0; index < 100; index += 1)
      aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    state.failing = true;
    assert.equal(await aggregator.flush(), 1, 'one org failed');
    for (let index = 0; index < 50; index += 1)
      aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    assert.equal(aggregator.bufferedCounters, 1, 'the failed counter and the new counts merge');
    state.failing = false;
    assert.equal(await aggregator.flush(), 0);
    assert.equal(total(), 150);
    await aggregator.close();
  });

  test('an org with many counters is written in bounded parts; a failed part alone is retried, nothing counts twice', async () => {
    const written: number[] = [];
    let calls = 0;
    const sink: FlushSink = async (_orgId, counters) => {
      calls += 1;
      if (calls === 1) throw new Error('the first part fails');
      written.push(counters.reduce((sum, counter) => sum + counter.count, 0));
    };
    const aggregator = aggregatorWith(sink);
    const distinct = FLUSH_MAX_COUNTERS + 10;
    for (let index = 0; index < distinct; index += 1)
      aggregator.add('org_a', 'api_requests', 'count', `key_${index}`, 'GET /x', 1);
    assert.equal(await aggregator.flush(), 1);
    assert.ok(written.every((part) => part <= FLUSH_MAX_COUNTERS));
    assert.equal(aggregator.bufferedCounters, FLUSH_MAX_COUNTERS, 'only the failed part is buffered again');
    await aggregator.flush();
    assert.equal(
      written.reduce((sum, part) => sum + part, 0),
      distinct,
    );
    await aggregator.close();
  });

  test('a flush asked for while another runs also covers what was added in between', async () => {
    const { sink, total } = memorySink();
    const aggregator = aggregatorWith(sink);
    aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    const first = aggregator.flush();
    aggregator.add('org_a', 'api_requests', 'count', 'key_b', 'GET /x', 1);
    const second = aggregator.flush();
    await Promise.all([first, second]);
    assert.equal(total(), 2);
    await aggregator.close();
  });

  test('close writes everything still buffered', async () => {
    const { sink, total } = memorySink();
    const aggregator = aggregatorWith(sink);
    for (let index = 0; index < 1_000; index += 1)
      aggregator.add(`org_${index % 10}`, 'api_requests', 'count', 'k', 'GET /x', 1);
    await aggregator.close();
    assert.equal(total(), 1_000);
    assert.equal(aggregator.bufferedCounters, 0);
  });

  test('close retries, and logs the counts it could not write instead of dropping them silently', async () => {
    const { sink, state } = memorySink();
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ level: 'error', pretty: false });
    const spy = Object.create(log) as typeof log;
    spy.error = ((object: Record<string, unknown>) => void lines.push(object)) as typeof log.error;
    spy.warn = (() => {}) as typeof log.warn;
    const aggregator = aggregatorWith(sink, { log: spy });
    aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    aggregator.add('org_a', 'api_requests', 'count', 'key_a', 'GET /x', 1);
    state.failing = true;
    await aggregator.close();
    assert.equal(state.calls, 3, 'three attempts');
    assert.equal(lines.length, 1);
    assert.deepEqual(
      (lines[0]!.lost as Array<Record<string, unknown>>).map((entry) => [entry.orgId, entry.count]),
      [['org_a', 2]],
    );
  });

  test('memory is bounded: past the limit new counters are dropped and counted, existing ones keep counting', async () => {
    const { sink, state, total } = memorySink();
    const registry = new client.Registry();
    const aggregator = createUsageAggregator({
      sink,
      clock: manualClock(),
      log: quiet,
      registry,
      intervalMs: 60_000,
    });
    // 1. The database refuses flushes: the first counter goes back into the buffer.
    state.failing = true;
    aggregator.add('org_a', 'api_requests', 'count', 'first', 'GET /x', 1);
    await aggregator.flush();
    // 2. While flushes fail, a full buffer does not flush on every request; past the limit,
    //    new counters are dropped.
    for (let index = 0; index < MAX_BUFFERED_COUNTERS + 10; index += 1) {
      aggregator.add('org_a', 'api_requests', 'count', `key_${index}`, 'GET /x', 1);
    }
    assert.equal(state.calls, 1, 'no flush per request while the database is failing');
    aggregator.add('org_a', 'api_requests', 'count', 'key_0', 'GET /x', 1);
    assert.equal(aggregator.bufferedCounters, MAX_BUFFERED_COUNTERS);
    const dropped = await registry.getSingleMetric('keel_usage_counters_dropped_total')!.get();
    assert.equal(dropped.values[0]?.value, 11);
    // 3. The database is back: everything buffered is written.
    state.failing = false;
    await aggregator.close();
    assert.equal(total(), MAX_BUFFERED_COUNTERS + 1, 'key_0 counted twice, the eleven dropped not at all');
  });
});
