import type pg from 'pg';
import client from 'prom-client';
import { SeriesHistogram } from './series-histogram.ts';

/** Buckets for request durations, in seconds: 1 ms to 10 s. */
export const HTTP_DURATION_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** The route label of requests that matched no route, so unknown URLs cannot grow the label set. */
export const UNMATCHED_ROUTE = 'unmatched';

export interface Metrics {
  readonly registry: client.Registry;
  readonly httpRequestDuration: SeriesHistogram<'route' | 'method' | 'status'>;
  /** Reports the pool's connection counts at every scrape. */
  observePool(name: string, pool: pg.Pool): void;
}

/**
 * Each app instance owns its registry, so two instances in one process (tests, tools) never
 * collide on metric names.
 */
export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const httpRequestDuration = new SeriesHistogram(
    'http_request_duration_seconds',
    'HTTP request duration in seconds, by route pattern, method and status code.',
    ['route', 'method', 'status'] as const,
    HTTP_DURATION_BUCKETS_SECONDS,
    registry,
  );
  const pools = new Map<string, pg.Pool>();
  new client.Gauge({
    name: 'keel_db_pool_connections',
    help: 'PostgreSQL pool connections by state: total, idle, and waiting (callers queued for one).',
    labelNames: ['pool', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, pool] of pools) {
        this.set({ pool: name, state: 'total' }, pool.totalCount);
        this.set({ pool: name, state: 'idle' }, pool.idleCount);
        this.set({ pool: name, state: 'waiting' }, pool.waitingCount);
      }
    },
  });
  new client.Gauge({
    name: 'keel_db_pool_max_connections',
    help: 'PostgreSQL pool size limit.',
    labelNames: ['pool'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, pool] of pools) this.set({ pool: name }, pool.options.max ?? 0);
    },
  });
  return {
    registry,
    httpRequestDuration,
    observePool: (name, pool) => {
      pools.set(name, pool);
    },
  };
}
