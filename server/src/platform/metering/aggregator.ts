import client from 'prom-client';
import type { Clock } from '../../infra/clock.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { Aggregation } from './catalogue.ts';
import { hourStart } from './domain/periods.ts';

/**
 * How often each process writes the usage it counted. It is also the most a crash (SIGKILL,
 * OOM, power loss) can lose of one process's request counts: see docs/usage.md.
 */
export const FLUSH_INTERVAL_MS = 5_000;
/** Distinct counters (org × meter × key × route × hour) that make a flush start at once. */
export const EARLY_FLUSH_COUNTERS = 10_000;
/**
 * Distinct counters held at most: about 400 bytes each, 40 MB in all. Reached only while the
 * database cannot take flushes: counters that exist keep counting, new ones are dropped and
 * counted in `keel_usage_counters_dropped_total`.
 */
export const MAX_BUFFERED_COUNTERS = 100_000;
/** Orgs written at the same time by one flush, each in a transaction of its own. */
export const FLUSH_CONCURRENCY = 2;
/** Counters written by one statement; an org with more is written in several transactions. */
export const FLUSH_MAX_COUNTERS = 5_000;
/** Attempts to write what is left at shutdown before the remainder is logged as lost. */
export const CLOSE_FLUSH_ATTEMPTS = 3;
export const CLOSE_FLUSH_RETRY_DELAY_MS = 500;

/** What one process counted of one meter, for one org, key, route and hour, since its last flush. */
export interface Counter {
  readonly meter: string;
  readonly aggregation: Aggregation;
  readonly keyId: string;
  readonly route: string;
  readonly hourMs: number;
  count: number;
  sum: number;
  max: number;
}

type OrgBuffer = Map<string, Map<string, Map<string, Map<string, Counter>>>>;
type HourBuffer = Map<number, OrgBuffer>;

/** Writes one org's counters in one transaction; throws when they were not written. */
export type FlushSink = (orgId: string, counters: readonly Counter[]) => Promise<void>;

export interface UsageAggregator {
  /** Counts `value` (a non-negative safe integer) in memory. Never waits, never throws. */
  add(
    orgId: string,
    meter: string,
    aggregation: Aggregation,
    keyId: string,
    route: string,
    value: number,
  ): void;
  /** Writes everything counted before the call. Resolves to the number of writes that failed. */
  flush(): Promise<number>;
  /** Stops the timer and writes everything, retrying; what still fails is logged, never silent. */
  close(): Promise<void>;
  readonly bufferedCounters: number;
}

export function createUsageAggregator(deps: {
  sink: FlushSink;
  clock: Clock;
  log: Logger;
  registry: client.Registry;
  intervalMs?: number;
}): UsageAggregator {
  const { sink, clock, log } = deps;
  const intervalMs = deps.intervalMs ?? FLUSH_INTERVAL_MS;
  // hour → org → route → key → meter → counter. Nested maps keyed by the caller's own strings
  // (whose hashes V8 caches) cost a fraction of one map keyed by a string built per request.
  let buffer: HourBuffer = new Map();
  let size = 0;
  // The hour most adds go to, so that they skip one lookup.
  let currentHourMs = Number.NaN;
  let currentHour: OrgBuffer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let again = false;
  let closed = false;
  // While flushes fail, a full buffer waits for the timer instead of retrying on every request.
  let lastFlushFailed = false;

  new client.Gauge({
    name: 'keel_usage_buffered_counters',
    help: 'Usage counters held in memory until the next flush.',
    registers: [deps.registry],
    collect() {
      this.set(size);
    },
  });
  const dropped = new client.Counter({
    name: 'keel_usage_counters_dropped_total',
    help: 'Requests and usage additions lost because the in-memory buffer was full (flushes failing for long).',
    registers: [deps.registry],
  });
  const failures = new client.Counter({
    name: 'keel_usage_flush_failures_total',
    help: 'Usage writes (one org, up to 5,000 counters) that failed; their counts stay buffered and are retried.',
    registers: [deps.registry],
  });

  /** The counters of one org, route and key in one hour, made on first use. */
  const countersOf = (hourMs: number, orgId: string, route: string, keyId: string): Map<string, Counter> => {
    let orgs = hourMs === currentHourMs ? currentHour : undefined;
    if (!orgs) {
      orgs = buffer.get(hourMs);
      if (!orgs) {
        orgs = new Map();
        buffer.set(hourMs, orgs);
      }
      currentHourMs = hourMs;
      currentHour = orgs;
    }
    let routes = orgs.get(orgId);
    if (!routes) {
      routes = new Map();
      orgs.set(orgId, routes);
    }
    let keys = routes.get(route);
    if (!keys) {
      keys = new Map();
      routes.set(route, keys);
    }
    let meters = keys.get(keyId);
    if (!meters) {
      meters = new Map();
      keys.set(keyId, meters);
    }
    return meters;
  };

  /** Adds a counter back (its flush failed) to what is buffered now. */
  const merge = (orgId: string, counter: Counter) => {
    const meters = countersOf(counter.hourMs, orgId, counter.route, counter.keyId);
    const existing = meters.get(counter.meter);
    if (existing) {
      existing.count += counter.count;
      existing.sum += counter.sum;
      if (counter.max > existing.max) existing.max = counter.max;
      return;
    }
    if (size >= MAX_BUFFERED_COUNTERS) {
      dropped.inc(counter.count);
      return;
    }
    meters.set(counter.meter, counter);
    size += 1;
  };

  /** Takes everything buffered, grouped by org, and starts an empty buffer. */
  const drain = (): Array<[string, Counter[]]> => {
    const byOrg = new Map<string, Counter[]>();
    for (const orgs of buffer.values()) {
      for (const [orgId, routes] of orgs) {
        let counters = byOrg.get(orgId);
        if (!counters) {
          counters = [];
          byOrg.set(orgId, counters);
        }
        for (const keys of routes.values()) {
          for (const meters of keys.values()) counters.push(...meters.values());
        }
      }
    }
    buffer = new Map();
    size = 0;
    currentHourMs = Number.NaN;
    currentHour = undefined;
    return [...byOrg];
  };

  /** Writes every buffered org; the counters of a failed write go back into the buffer. */
  const writeAll = async (): Promise<number> => {
    const drained: Array<[string, Counter[]]> = [];
    for (const [orgId, counters] of drain()) {
      for (let start = 0; start < counters.length; start += FLUSH_MAX_COUNTERS) {
        drained.push([orgId, counters.slice(start, start + FLUSH_MAX_COUNTERS)]);
      }
    }
    let failed = 0;
    let next = 0;
    const worker = async () => {
      while (next < drained.length) {
        const [orgId, counters] = drained[next++]!;
        try {
          await sink(orgId, counters);
        } catch (error) {
          failed += 1;
          failures.inc();
          log.warn(
            { err: error, orgId, counters: counters.length },
            'usage flush failed; kept for the next one',
          );
          for (const counter of counters) merge(orgId, counter);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(FLUSH_CONCURRENCY, drained.length) }, worker));
    return failed;
  };

  const schedule = () => {
    if (timer || closed || size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void kick();
    }, intervalMs);
    timer.unref();
  };

  // One flush runs at a time. A request for another while one runs makes it go round again, so
  // that `flush()` always covers what was counted before it was called.
  const kick = (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    clearTimeout(timer);
    timer = undefined;
    running = (async () => {
      let failed: number;
      do {
        again = false;
        failed = await writeAll();
        lastFlushFailed = failed > 0;
      } while (again && failed === 0 && size > 0);
      return failed;
    })().finally(() => {
      running = undefined;
      schedule();
    });
    return running;
  };

  return {
    get bufferedCounters() {
      return size;
    },
    add(orgId, meter, aggregation, keyId, route, value) {
      const hourMs = hourStart(clock.nowMs());
      const meters = countersOf(hourMs, orgId, route, keyId);
      const counter = meters.get(meter);
      if (counter) {
        counter.count += 1;
        counter.sum += value;
        if (value > counter.max) counter.max = value;
        return;
      }
      if (size >= MAX_BUFFERED_COUNTERS) {
        dropped.inc();
        return;
      }
      meters.set(meter, { meter, aggregation, keyId, route, hourMs, count: 1, sum: value, max: value });
      size += 1;
      if (size >= EARLY_FLUSH_COUNTERS && !lastFlushFailed) void kick();
      else schedule();
    },
    flush: () => kick(),
    async close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      for (let attempt = 1; attempt <= CLOSE_FLUSH_ATTEMPTS; attempt += 1) {
        await kick();
        if (size === 0) return;
        if (attempt < CLOSE_FLUSH_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_RETRY_DELAY_MS));
        }
      }
      // The counts are in this log line, so an operator can still add them by hand.
      const lost = drain().flatMap(([orgId, counters]) =>
        counters.map((counter) => ({
          orgId,
          meter: counter.meter,
          keyId: counter.keyId,
          route: counter.route,
          hourStart: new Date(counter.hourMs).toISOString(),
          count: counter.count,
          sum: counter.sum,
          max: counter.max,
        })),
      );
      log.error({ lost }, 'usage counts could not be written at shutdown');
    },
  };
}
