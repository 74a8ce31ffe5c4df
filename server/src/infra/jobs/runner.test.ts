import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { createDatabase, type Database } from '../db/database.ts';
import { createLogger } from '../observability/logger.ts';
import { createJobQueue, type JobDefinition, startWorker } from './runner.ts';

const log = createLogger({ level: 'silent', pretty: false });

const waitFor = async (predicate: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('job runner', () => {
  let testDb: TestDatabase;
  let database: Database;
  before(async () => {
    testDb = await createTestDatabase();
    database = createDatabase({ url: testDb.url, poolSize: 5, log });
  });
  after(async () => {
    await database.close();
    await testDb.drop();
  });

  test('a job enqueued in a committed transaction runs with its payload', async () => {
    const seen: unknown[] = [];
    const jobs: JobDefinition[] = [
      { name: 'test.record', handler: async (payload) => void seen.push(payload) },
    ];
    const worker = await startWorker({ pool: database.pool, jobs, log });
    try {
      const queue = createJobQueue(database.db);
      await database.transaction((tx) => queue.enqueue('test.record', { n: 1 }, {}, tx));
      await waitFor(() => seen.length === 1);
      assert.deepEqual(seen, [{ n: 1 }]);
    } finally {
      await worker.stop();
    }
  });

  test('a job enqueued in a rolled-back transaction never exists', async () => {
    const queue = createJobQueue(database.db);
    await assert.rejects(
      database.transaction(async (tx) => {
        await queue.enqueue('test.never', { n: 2 }, {}, tx);
        throw new Error('roll back');
      }),
    );
    const { rows } = await database.pool.query(
      `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'test.never'`,
    );
    assert.equal(rows[0].n, 0);
  });

  test('a failing job is retried until it succeeds', async () => {
    let attempts = 0;
    const jobs: JobDefinition[] = [
      {
        name: 'test.flaky',
        handler: async () => {
          attempts += 1;
          if (attempts === 1) throw new Error('first attempt fails');
        },
      },
    ];
    const worker = await startWorker({ pool: database.pool, jobs, log });
    try {
      await createJobQueue(database.db).enqueue('test.flaky', {});
      await waitFor(() => attempts >= 1);
      // graphile-worker backs off exp(attempts) seconds; bring the retry forward instead of waiting.
      await waitFor(() => attempts === 1);
      await database.pool.query(`update graphile_worker._private_jobs set run_at = now() where attempts > 0`);
      await database.pool.query(`select pg_notify('jobs:insert', '')`);
      await waitFor(() => attempts === 2);
      // The worker removes a job once its handler has resolved; give it the moment that takes.
      let left = -1;
      const deadline = Date.now() + 5_000;
      while (left !== 0 && Date.now() < deadline) {
        const { rows } = await database.pool.query(
          `select count(*)::int as n from graphile_worker.jobs where task_identifier = 'test.flaky'`,
        );
        left = rows[0].n;
        if (left !== 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(left, 0, 'a job that succeeded is removed from the queue');
    } finally {
      await worker.stop();
    }
  });

  test('a cron job runs its missed ticks after a restart (backfill)', async () => {
    // 1. The schedule was last run 12 minutes ago, as if every worker had been down since.
    await database.pool.query(
      `insert into graphile_worker._private_known_crontabs (identifier, known_since, last_execution)
       values ('test.cron', now() - interval '1 day', now() - interval '12 minutes')`,
    );
    let runs = 0;
    const jobs: JobDefinition[] = [
      { name: 'test.cron', cron: '*/5 * * * *', handler: async () => void runs++ },
    ];
    // 2. A worker starts: the ticks it missed within the backfill window are enqueued and run.
    const worker = await startWorker({ pool: database.pool, jobs, log });
    try {
      await waitFor(() => runs >= 2);
      assert.ok(runs >= 2 && runs <= 3, `two or three */5 ticks fall in 12 minutes, ran ${runs}`);
    } finally {
      await worker.stop();
    }
  });

  test('two jobs with the same name are refused', async () => {
    const handler = async () => {};
    await assert.rejects(
      startWorker({
        pool: database.pool,
        jobs: [
          { name: 'x', handler },
          { name: 'x', handler },
        ],
        log,
      }),
      /two jobs are named x/,
    );
  });
});
