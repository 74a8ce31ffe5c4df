import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger as JobLogger, runMigrations as runJobQueueMigrations } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../observability/logger.ts';

/** The source tree whose `migrations/` folders hold Keel's SQL migrations. */
const SOURCE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** File name of a migration: a sortable version (a UTC timestamp, YYYYMMDDHHMM), then a name. */
const MIGRATION_FILE = /^(\d{12})_([a-z0-9_]+)\.sql$/;
/** Every process that migrates takes this advisory lock first, so migrations apply exactly once. */
export const MIGRATION_LOCK_KEY = 0x6b65656c; // "keel"

export interface Migration {
  /** The folder that owns it, relative to the source root: `infra/db`, `modules/ledger`. */
  readonly module: string;
  readonly version: string;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

let cached: readonly Migration[] | undefined;

/** Every migration in the source tree, in the order they apply: by version, then by module. */
export function discoverMigrations(root = SOURCE_ROOT): readonly Migration[] {
  if (root === SOURCE_ROOT && cached) return cached;
  const found: Migration[] = [];
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || path.basename(entry.parentPath) !== 'migrations') continue;
    const match = MIGRATION_FILE.exec(entry.name);
    if (!match) {
      throw new Error(`migration file name must look like 202611210000_name.sql: ${entry.name}`);
    }
    const sql = readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
    found.push({
      module: path.relative(root, path.dirname(entry.parentPath)).split(path.sep).join('/'),
      version: match[1]!,
      name: match[2]!,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  found.sort((a, b) => a.version.localeCompare(b.version) || a.module.localeCompare(b.module));
  const keys = new Set<string>();
  for (const migration of found) {
    const key = `${migration.module}@${migration.version}`;
    if (keys.has(key)) throw new Error(`two migrations share version ${key}`);
    keys.add(key);
  }
  if (root === SOURCE_ROOT) cached = found;
  return found;
}

const CREATE_LEDGER_TABLE = `
  create table if not exists keel_migrations (
    module text not null,
    version text not null,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    primary key (module, version)
  )`;

export interface MigrationStatus {
  readonly applied: number;
  readonly pending: readonly Migration[];
}

/** What is applied and what is not, read without taking the lock. */
export async function migrationStatus(
  pool: pg.Pool,
  migrations = discoverMigrations(),
): Promise<MigrationStatus> {
  const { rows } = await pool
    .query<{ module: string; version: string }>(`select module, version from keel_migrations`)
    .catch((error: { code?: string }) => {
      if (error.code === '42P01') return { rows: [] }; // undefined_table: nothing applied yet
      throw error;
    });
  const applied = new Set(rows.map((row) => `${row.module}@${row.version}`));
  return {
    applied: applied.size,
    pending: migrations.filter((m) => !applied.has(`${m.module}@${m.version}`)),
  };
}

/**
 * Applies every pending migration, each in its own transaction, under a session advisory lock:
 * replicas that start together queue on the lock and find nothing left to do. Applied
 * migrations are never edited; a changed checksum stops the run.
 */
export async function migrate(
  pool: pg.Pool,
  log: Logger,
  migrations = discoverMigrations(),
): Promise<{ applied: readonly Migration[] }> {
  // The lock holder takes a second connection for the job queue's migrations.
  if ((pool.options.max ?? 10) < 2) throw new Error('migrate needs a pool of at least 2 connections');
  const client = await pool.connect();
  const appliedNow: Migration[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(CREATE_LEDGER_TABLE);
      const { rows } = await client.query<{ module: string; version: string; checksum: string }>(
        'select module, version, checksum from keel_migrations',
      );
      const applied = new Map(rows.map((row) => [`${row.module}@${row.version}`, row.checksum]));
      for (const migration of migrations) {
        const key = `${migration.module}@${migration.version}`;
        const checksum = applied.get(key);
        if (checksum !== undefined) {
          if (checksum !== migration.checksum) {
            throw new Error(
              `migration ${key}_${migration.name} was changed after it was applied; add a new migration instead`,
            );
          }
          continue;
        }
        await client.query('begin');
        try {
          await client.query(migration.sql);
          await client.query(
            'insert into keel_migrations (module, version, name, checksum) values ($1, $2, $3, $4)',
            [migration.module, migration.version, migration.name, migration.checksum],
          );
          await client.query('commit');
        } catch (error) {
          await client.query('rollback');
          throw new Error(`migration ${key}_${migration.name} failed: ${(error as Error).message}`, {
            cause: error,
          });
        }
        appliedNow.push(migration);
        log.info(
          { module: migration.module, version: migration.version, migration: migration.name },
          'migration applied',
        );
      }
      // The job queue's own schema versions itself; it is brought up to date under the same lock.
      await runJobQueueMigrations({ pgPool: pool, logger: silentJobLogger });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
  return { applied: appliedNow };
}

const silentJobLogger = new JobLogger(() => () => {});
