import type { Config } from '../config.ts';
import { type Clock, systemClock } from './clock.ts';
import { createDatabase, type Database } from './db/database.ts';
import { type IdGenerator, newId } from './ids.ts';
import { createJobQueue, type JobQueue } from './jobs/runner.ts';
import { createErrorReporter, type ErrorReporter } from './observability/error-reporter.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createMemoryStore, createRedisStore, type KeyValueStore } from './redis/kv.ts';

/**
 * The plumbing one Keel process shares between its HTTP API and its workers, built once and
 * passed down as plain arguments (no container).
 */
export interface Runtime {
  readonly config: Config;
  readonly log: Logger;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly database: Database;
  readonly kv: KeyValueStore;
  readonly metrics: Metrics;
  readonly errorReporter: ErrorReporter;
  readonly jobs: JobQueue;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  readonly log?: Logger;
  readonly clock?: Clock;
  readonly newId?: IdGenerator;
}

export async function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  if (!config.database.url) {
    throw new Error('createRuntime needs a database URL: start the embedded PostgreSQL first (main.ts does)');
  }
  const log = overrides.log ?? createLogger(config.log);
  const clock = overrides.clock ?? systemClock;
  const database = createDatabase({ url: config.database.url, poolSize: config.database.poolSize, log });
  const kv = config.redis.url ? createRedisStore(config.redis.url, log) : createMemoryStore(clock);
  const metrics = createMetrics();
  metrics.observePool('main', database.pool);
  const errorReporter = await createErrorReporter({ dsn: config.sentry.dsn });
  let closing: Promise<void> | undefined;
  return {
    config,
    log,
    clock,
    newId: overrides.newId ?? newId,
    database,
    kv,
    metrics,
    errorReporter,
    jobs: createJobQueue(database.db),
    close() {
      closing ??= (async () => {
        await Promise.allSettled([database.close(), kv.close(), errorReporter.flush()]);
      })();
      return closing;
    },
  };
}
