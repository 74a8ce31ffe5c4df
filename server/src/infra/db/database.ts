import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { Logger } from '../observability/logger.ts';
import type { Tables } from './tables.ts';

/** Longest wait for a free pooled connection before a query fails. */
export const POOL_ACQUIRE_TIMEOUT_MS = 10_000;
/** Idle pooled connections are closed after this long. */
export const POOL_IDLE_TIMEOUT_MS = 30_000;
/** No single statement may run longer than this unless a caller raises it for its transaction. */
export const STATEMENT_TIMEOUT_MS = 30_000;

export type Db = Kysely<Tables>;
export type Tx = Transaction<Tables>;

export interface Database {
  readonly pool: pg.Pool;
  readonly db: Db;
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws.
   * Hooks registered with `afterCommit(tx, …)` run once it has committed.
   */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Hooks of the transactions open now, keyed by the query builder their work is given. */
const commitHooks = new WeakMap<Db | Tx, (() => void)[]>();

/**
 * Runs `hook` once the work done through `executor` has committed: at the end of a transaction
 * Keel opened (`Database.transaction`, or one that calls `trackCommit`), dropped if it rolls
 * back; at once for a plain connection, whose statements commit as they complete. Returns false,
 * and keeps nothing, for a transaction Keel does not track: the caller must then act inside it.
 */
export function afterCommit(executor: Db | Tx, hook: () => void): boolean {
  const hooks = commitHooks.get(executor);
  if (hooks) {
    hooks.push(hook);
    return true;
  }
  if (executor.isTransaction) return false;
  hook();
  return true;
}

/**
 * For code that opens its own transactions: registers `builder` as the one a transaction's work
 * runs through, and returns what to call after its commit (runs the hooks) and after a rollback
 * (drops them). One builder holds one open transaction at a time.
 */
export function trackCommit(builder: Db | Tx): { committed(): void; abandoned(): void } {
  const hooks: (() => void)[] = [];
  commitHooks.set(builder, hooks);
  return {
    committed() {
      commitHooks.delete(builder);
      for (const hook of hooks) hook();
    },
    abandoned() {
      commitHooks.delete(builder);
    },
  };
}

export function createDatabase(options: {
  url: string;
  poolSize: number;
  log: Logger;
  applicationName?: string;
}): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: POOL_ACQUIRE_TIMEOUT_MS,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: options.applicationName ?? 'keel',
  });
  // An idle client that loses its server (a restart, a failover) emits here; the pool replaces it.
  pool.on('error', (error) => options.log.warn({ err: error }, 'idle postgres connection failed'));
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  // pg-pool's end() resolves before its sockets have closed; track them, so close() returns only
  // when no connection is left (the embedded server may be stopped right after).
  const open = new Set<pg.PoolClient>();
  pool.on('connect', (client) => open.add(client));
  pool.on('remove', (client) => open.delete(client));
  let closing: Promise<void> | undefined;
  return {
    pool,
    db,
    async transaction(work) {
      let tracked: ReturnType<typeof trackCommit> | undefined;
      try {
        const result = await db.transaction().execute((tx) => {
          tracked = trackCommit(tx);
          return work(tx);
        });
        tracked?.committed();
        return result;
      } catch (error) {
        tracked?.abandoned();
        throw error;
      }
    },
    close: () => {
      closing ??= (async () => {
        // Kysely ends the pool only if it ever ran a query through it.
        await db.destroy();
        if (!pool.ending) await pool.end();
        if (open.size > 0) {
          await new Promise<void>((resolve) => pool.on('remove', () => open.size === 0 && resolve()));
        }
      })();
      return closing;
    },
  };
}
