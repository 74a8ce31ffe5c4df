import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { createLogger } from '../observability/logger.ts';
import { discoverMigrations, migrate, migrationStatus } from './migrate.ts';

const log = createLogger({ level: 'silent', pretty: false });

function migrationTree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'keel-migrations-'));
  for (const [file, sql] of Object.entries(files)) {
    mkdirSync(path.join(root, path.dirname(file)), { recursive: true });
    writeFileSync(path.join(root, file), sql);
  }
  return root;
}

describe('migrations', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase({ empty: true });
  });
  after(() => database.drop());

  test('discovers migration folders per module, ordered by version then module', () => {
    const root = migrationTree({
      'modules/ledger/migrations/202611210200_accounts.sql': 'select 1',
      'infra/db/migrations/202611210100_base.sql': 'select 1',
      'modules/audit/migrations/202611210200_entries.sql': 'select 1',
    });
    assert.deepEqual(
      discoverMigrations(root).map((m) => `${m.version} ${m.module} ${m.name}`),
      [
        '202611210100 infra/db base',
        '202611210200 modules/audit entries',
        '202611210200 modules/ledger accounts',
      ],
    );
  });

  test('rejects a badly named migration file', () => {
    const root = migrationTree({ 'modules/x/migrations/1_oops.sql': 'select 1' });
    assert.throws(() => discoverMigrations(root), /must look like/);
  });

  test('concurrent migrators apply every migration exactly once', async () => {
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: database.url, max: 2 }));
    try {
      const results = await Promise.all(pools.map((pool) => migrate(pool, log)));
      const appliedCounts = results.map((result) => result.applied.length);
      const all = discoverMigrations();
      assert.equal(
        appliedCounts.reduce((sum, n) => sum + n, 0),
        all.length,
        'the migrations were applied once in total',
      );
      const { rows } = await pools[0]!.query(
        'select module, version, count(*)::int as n from keel_migrations group by 1, 2',
      );
      assert.equal(rows.length, all.length);
      assert.ok(rows.every((row) => row.n === 1));
      assert.deepEqual((await migrationStatus(pools[0]!)).pending, []);
      // The job queue's schema came up with them.
      const jobs = await pools[0]!.query(`select to_regclass('graphile_worker.jobs') as jobs`);
      assert.ok(jobs.rows[0].jobs);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  test('a migration that fails is rolled back and not recorded', async () => {
    const root = migrationTree({
      'modules/broken/migrations/209901010000_half.sql':
        'create table half_done (id int); select * from missing_table;',
    });
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    try {
      await assert.rejects(migrate(pool, log, discoverMigrations(root)), /half failed/);
      const { rows } = await pool.query(`select to_regclass('half_done') as t`);
      assert.equal(rows[0].t, null);
      const status = await migrationStatus(pool, discoverMigrations(root));
      assert.equal(status.pending.length, 1);
    } finally {
      await pool.end();
    }
  });

  test('an applied migration that was edited stops the run', async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    try {
      const original = migrationTree({
        'modules/edit/migrations/209901010001_t.sql': 'create table edited_once (id int);',
      });
      await migrate(pool, log, discoverMigrations(original));
      const edited = migrationTree({
        'modules/edit/migrations/209901010001_t.sql': 'create table edited_once (id bigint);',
      });
      await assert.rejects(
        migrate(pool, log, discoverMigrations(edited)),
        /was changed after it was applied/,
      );
    } finally {
      await pool.end();
    }
  });
});
