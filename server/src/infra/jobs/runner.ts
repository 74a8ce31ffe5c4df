import { parseCronItems, type Runner, run, type TaskList, Logger as WorkerLogger } from 'graphile-worker';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Db, Tx } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * Background jobs run on graphile-worker: a PostgreSQL queue (SKIP LOCKED, LISTEN/NOTIFY for
 * low latency), so jobs are enqueued in the same transaction as the change that asks for them,
 * any number of worker replicas share the queue, and cron items run once per tick cluster-wide.
 */

/** Jobs one worker process runs at the same time. */
export const WORKER_CONCURRENCY = 4;
/** Fallback polling for jobs scheduled in the future; new jobs arrive by NOTIFY at once. */
export const WORKER_POLL_INTERVAL_MS = 2_000;
/** Attempts before a job is left failed for an operator to look at. */
export const DEFAULT_MAX_ATTEMPTS = 10;
/** After a restart, cron ticks missed within this window are run once to catch up. */
export const CRON_BACKFILL_MS = 60 * 60 * 1000;

export interface JobContext {
  readonly log: Logger;
  readonly jobId: string;
  readonly attempt: number;
}

export interface JobDefinition<Payload = unknown> {
  readonly name: string;
  /** Must be idempotent: a job whose worker dies mid-run is run again. */
  readonly handler: (payload: Payload, context: JobContext) => Promise<void>;
  /** A crontab pattern (UTC), e.g. `*\/15 * * * *`, to run the job on a schedule. */
  readonly cron?: string;
  readonly maxAttempts?: number;
}

export interface EnqueueOptions {
  readonly runAt?: Date;
  /** Jobs sharing a key are one job: enqueueing again replaces the pending one. */
  readonly jobKey?: string;
  readonly maxAttempts?: number;
  /** Jobs in one queue run one at a time, in order. */
  readonly queue?: string;
}

export interface JobQueue {
  /** Enqueues in `tx` when given, so the job exists only if the transaction commits. */
  enqueue(name: string, payload: unknown, options?: EnqueueOptions, tx?: Tx): Promise<void>;
}

export function createJobQueue(db: Db): JobQueue {
  return {
    async enqueue(name, payload, options = {}, tx) {
      await sql`select graphile_worker.add_job(
          identifier => ${name},
          payload => ${JSON.stringify(payload ?? {})}::json,
          queue_name => ${options.queue ?? null},
          run_at => ${options.runAt ?? null},
          max_attempts => ${options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS},
          job_key => ${options.jobKey ?? null}
        )`.execute(tx ?? db);
    },
  };
}

export interface Worker {
  stop(): Promise<void>;
}

function workerLogger(log: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const bindings = { component: 'jobs', ...scope, ...meta };
    if (level === 'error') log.error(bindings, message);
    else if (level === 'warning') log.warn(bindings, message);
    else if (level === 'info') log.debug(bindings, message);
    else log.trace(bindings, message);
  });
}

export async function startWorker(options: {
  pool: pg.Pool;
  jobs: readonly JobDefinition[];
  log: Logger;
  concurrency?: number;
}): Promise<Worker> {
  const log = options.log.child({ component: 'jobs' });
  const taskList: TaskList = {};
  for (const job of options.jobs) {
    if (taskList[job.name]) throw new Error(`two jobs are named ${job.name}`);
    taskList[job.name] = async (payload, helpers) => {
      const context: JobContext = {
        log: log.child({ job: job.name, jobId: helpers.job.id }),
        jobId: helpers.job.id,
        attempt: helpers.job.attempts,
      };
      const startedAt = performance.now();
      try {
        await job.handler(payload, context);
        context.log.debug({ durationMs: performance.now() - startedAt }, 'job done');
      } catch (error) {
        context.log.warn({ err: error, attempt: context.attempt }, 'job failed; it will be retried');
        throw error;
      }
    };
  }
  const parsedCronItems = parseCronItems(
    options.jobs
      .filter((job) => job.cron)
      .map((job) => ({
        task: job.name,
        match: job.cron!,
        identifier: job.name,
        options: { backfillPeriod: CRON_BACKFILL_MS, maxAttempts: job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS },
      })),
  );
  const runner: Runner = await run({
    pgPool: options.pool,
    taskList,
    parsedCronItems,
    concurrency: options.concurrency ?? WORKER_CONCURRENCY,
    pollInterval: WORKER_POLL_INTERVAL_MS,
    noHandleSignals: true,
    logger: workerLogger(log),
  });
  log.info({ jobs: Object.keys(taskList) }, 'worker started');
  return {
    async stop() {
      await runner.stop();
      log.info('worker stopped');
    },
  };
}
