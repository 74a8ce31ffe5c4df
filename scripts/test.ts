// Runs the whole test suite against one PostgreSQL: the server at DATABASE_URL when set,
// otherwise an embedded server started for this run. The template database is migrated once;
// each test file clones it. REDIS_URL, when set, is handed to the tests that need Redis.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureBuilt } from '../server/bin/build.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../server/src/infra/db/embedded.ts';
import { migrate } from '../server/src/infra/db/migrate.ts';
import { createLogger } from '../server/src/infra/observability/logger.ts';
import {
  ADMIN_URL_ENV,
  databaseUrl,
  REDIS_URL_ENV,
  RUN_ID_ENV,
  TEMPLATE_DB_ENV,
} from '../server/test/harness.ts';

/** Test files run in parallel processes; most of their time is spent waiting on PostgreSQL. */
const TEST_CONCURRENCY = Number(process.env.KEEL_TEST_CONCURRENCY ?? 4);
/** A single test that runs longer than this fails rather than hanging the run. */
const TEST_TIMEOUT_MS = 120_000;
const TEST_ROOTS = ['server/src', 'server/test', 'scripts', 'bench'];

const log = createLogger({ level: 'warn', pretty: false, name: 'keel-test' });
const root = path.resolve(import.meta.dirname, '..');
const filter = process.argv.slice(2);

async function testFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const dir of TEST_ROOTS) {
    const entries = await readdir(path.join(root, dir), { recursive: true }).catch(() => []);
    for (const entry of entries) {
      const file = path.join(dir, entry);
      if (file.endsWith('.test.ts') && !file.includes('node_modules')) files.push(file);
    }
  }
  files.sort();
  return filter.length === 0 ? files : files.filter((file) => filter.some((part) => file.includes(part)));
}

async function main(): Promise<number> {
  const runId = randomBytes(3).toString('hex');
  // Tests spawn `keel`, which runs server/dist: compile it once now (beside PostgreSQL's start-up)
  // if the sources changed, rather than in whichever test spawns it first.
  const built = ensureBuilt();
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  let admin: string;
  if (process.env.DATABASE_URL) {
    admin = process.env.DATABASE_URL;
    process.stdout.write(`# PostgreSQL: DATABASE_URL (${new URL(admin).host})\n`);
  } else {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-test-'));
    embedded = await startEmbeddedPostgres({ dataDir, log });
    admin = embedded.adminUrl;
    process.stdout.write(`# PostgreSQL: embedded (port ${embedded.port})\n`);
  }
  const redisUrl = process.env.REDIS_URL;
  process.stdout.write(
    `# Redis: ${redisUrl ? new URL(redisUrl).host : 'not set: Redis tests are skipped'}\n`,
  );

  const template = `keel_tpl_${runId}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${template}`);
    const pool = new pg.Pool({ connectionString: databaseUrl(admin, template), max: 2 });
    await migrate(pool, log);
    await pool.end();

    const files = await testFiles();
    await built;
    const code = await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--test',
          `--test-concurrency=${TEST_CONCURRENCY}`,
          `--test-timeout=${TEST_TIMEOUT_MS}`,
          ...files,
        ],
        {
          cwd: root,
          stdio: 'inherit',
          env: {
            ...process.env,
            [ADMIN_URL_ENV]: admin,
            [TEMPLATE_DB_ENV]: template,
            [RUN_ID_ENV]: runId,
            [REDIS_URL_ENV]: redisUrl ?? '',
            // Test files build their config explicitly; the run's own variables must not leak in.
            DATABASE_URL: '',
            REDIS_URL: '',
          },
        },
      );
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
    return code;
  } finally {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like $1 or datname = $2`,
      [`keel_t_${runId}_%`, template],
    );
    for (const row of rows) await client.query(`drop database if exists ${row.datname} with (force)`);
    await client.end();
    await embedded?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
