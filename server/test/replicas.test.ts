// Several Keel processes on one database, as in production: `keel start --role api` replicas
// started together, and a `--role worker` replica.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './harness.ts';
import {
  get,
  type KeelProcess,
  keelEnv,
  listeningUrl,
  logIndex,
  migrationFiles,
  spawnKeel,
  tempDir,
} from './process.ts';

const databases: TestDatabase[] = [];
after(async () => {
  await Promise.all(databases.map((database) => database.drop()));
});

let cwd: string;
before(async () => {
  cwd = await tempDir('keel-replicas-cwd-');
});

async function query<Row extends pg.QueryResultRow>(url: string, text: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text)).rows;
  } finally {
    await client.end();
  }
}

async function stopAll(replicas: readonly KeelProcess[]) {
  const exits = await Promise.all(replicas.map((keel) => keel.stop('SIGTERM')));
  for (const [index, exit] of exits.entries()) {
    assert.deepEqual(exit, { code: 0, signal: null }, replicas[index]?.stderr());
  }
}

test('two --role api replicas started at the same moment on an empty database both become ready, and each migration is applied exactly once', async () => {
  const database = await createTestDatabase({ empty: true });
  databases.push(database);
  const env = keelEnv({ DATABASE_URL: database.url, KEEL_DATA_DIR: await tempDir('keel-replicas-data-') });
  const replicas = [
    spawnKeel(['start', '--role', 'api'], { cwd, env }),
    spawnKeel(['start', '--role', 'api'], { cwd, env }),
  ];

  const urls = await Promise.all(replicas.map((keel) => listeningUrl(keel)));
  for (const url of urls) {
    const ready = await get(`${url}/health/ready`);
    assert.equal(ready.status, 200, ready.text);
    assert.equal(
      (ready.body as { checks: { migrations: { status: string } } }).checks.migrations.status,
      'up',
    );
  }

  const files = await migrationFiles();
  const rows = await query<{ module: string; version: string; count: number }>(
    database.url,
    'select module, version, count(*)::int as count from keel_migrations group by 1, 2 order by 1, 2',
  );
  assert.equal(rows.length, files.length, `one row per .sql file (${files.join(', ')})`);
  for (const row of rows) assert.equal(row.count, 1, `${row.module}@${row.version} is applied once`);
  const appliedLines = replicas.flatMap((keel) =>
    keel.logs.filter((line) => line.msg === 'migration applied'),
  );
  assert.equal(appliedLines.length, files.length, 'between them, the replicas applied each migration once');
  const [jobSchema] = await query<{ present: boolean }>(
    database.url,
    `select to_regnamespace('graphile_worker') is not null as present`,
  );
  assert.equal(jobSchema?.present, true, 'the job queue schema is migrated too');

  for (const keel of replicas) {
    assert.equal(keel.logs.find((line) => line.msg === 'keel listening')?.role, 'api');
    assert.ok(
      !keel.logs.some((line) => line.component === 'embedded-postgres'),
      'DATABASE_URL: nothing embedded',
    );
  }
  await stopAll(replicas);
  // Checked over the whole run: the workers start after "keel listening".
  for (const keel of replicas) {
    assert.equal(logIndex(keel.logs, 'worker started'), -1, '--role api runs no worker');
    assert.equal(logIndex(keel.logs, 'worker stopped'), -1);
  }
});

test('--role worker serves the operations routes (live, ready, metrics, docs) and runs the workers', async () => {
  const database = await createTestDatabase();
  databases.push(database);
  const env = keelEnv({ DATABASE_URL: database.url, KEEL_DATA_DIR: await tempDir('keel-replicas-data-') });
  const worker = spawnKeel(['start', '--role', 'worker'], { cwd, env });
  const url = await listeningUrl(worker);
  await worker.waitForLog('worker started');
  assert.equal(worker.logs.find((line) => line.msg === 'keel listening')?.role, 'worker');

  const live = await get(`${url}/health/live`);
  assert.equal(live.status, 200);
  assert.deepEqual(live.body, { status: 'ok' });
  assert.equal((await get(`${url}/health/ready`)).status, 200);
  const metrics = await get(`${url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /^# HELP /m, 'Prometheus text format');
  // The OpenAPI document and its reference are "always served" (DESIGN.md), by every role.
  assert.equal((await get(`${url}/openapi.json`)).status, 200);
  const docs = await fetch(`${url}/docs`, { signal: AbortSignal.timeout(5_000) });
  await docs.arrayBuffer();
  assert.equal(docs.status, 200);

  await stopAll([worker]);
  assert.ok(logIndex(worker.logs, 'worker stopped') > logIndex(worker.logs, 'shutting down'));
});
