import type { Config } from '../config.ts';
import { type ChainRegistry, createChainRegistry } from './chains/index.ts';
import { type Clock, systemClock } from './clock.ts';
import { createDatabase, type Database } from './db/database.ts';
import { type IdGenerator, newId } from './ids.ts';
import { createJobQueue, type JobQueue } from './jobs/runner.ts';
import { createSecretBox, resolveMasterKey, type SecretBox } from './keystore/secret-box.ts';
import { createMailer, type Mailer } from './mail/index.ts';
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
  /** Outgoing mail: SMTP when SMTP_URL is set, else written to the log (see infra/mail). */
  readonly mailer: Mailer;
  /** A viem public client per configured EVM chain id (CHAIN_RPC_URLS). */
  readonly chains: ChainRegistry;
  /** Seals secrets Keel must read back (webhook secrets, signing keys) under the master key. */
  readonly secretBox: SecretBox;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  readonly log?: Logger;
  readonly clock?: Clock;
  readonly newId?: IdGenerator;
  readonly mailer?: Mailer;
  readonly chains?: ChainRegistry;
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
    mailer: overrides.mailer ?? createMailer(config.mail, log),
    chains: overrides.chains ?? createChainRegistry(config.chains.rpcUrls),
    secretBox: createSecretBox(resolveMasterKey(config, log)),
    close() {
      closing ??= (async () => {
        await Promise.allSettled([database.close(), kv.close(), errorReporter.flush()]);
      })();
      return closing;
    },
  };
}
