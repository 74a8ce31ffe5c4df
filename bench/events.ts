// Event-emitting transactions: how many transactions per second can each write a change's event
// to the outbox when many commit at once.
//
// Measured: 64 concurrent writers, each running `database.transaction(tx => events.emit(...))`
// in a loop, through Keel's events service: the consumers' wake-up (NOTIFY) is sent after the
// commit, coalesced per process.
// Baseline, same run: the same writers through a transaction Keel does not track, where the
// service falls back to a NOTIFY inside the transaction, as every emit did before. PostgreSQL
// holds one lock from a notifying transaction's pre-commit until its commit is flushed, so
// those commits queue behind one another.
// Both run in this process against the same PostgreSQL (DATABASE_URL, else embedded), with the
// pool size of a Keel process; rounds alternate which side goes first, and medians are reported.
import { Type } from 'typebox';
import { DEFAULT_DATABASE_POOL_SIZE } from '../server/src/config.ts';
import { systemClock } from '../server/src/infra/clock.ts';
import { createDatabase, type Tx } from '../server/src/infra/db/database.ts';
import { migrate } from '../server/src/infra/db/migrate.ts';
import { newId } from '../server/src/infra/ids.ts';
import { createLogger } from '../server/src/infra/observability/logger.ts';
import { createEventsService, defineEvent } from '../server/src/platform/events/index.ts';
import { type BenchResult, benchDatabase, closedLoop, median, progress, round, roundOrder } from './lib.ts';

/** Writers, each with one transaction in flight at a time. */
export const WRITERS = 64;
/** Connections: Keel's default pool size (DATABASE_POOL_SIZE). */
export const POOL_SIZE = DEFAULT_DATABASE_POOL_SIZE;
export const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3_000);
export const WARMUP_MS = 1_000;
export const ROUNDS = 3;

const log = createLogger({ level: 'warn', pretty: false, name: 'bench' });
const EMITTED = defineEvent({
  type: 'bench.emitted',
  version: 1,
  description: 'An event written by the events benchmark.',
  payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
});

interface Measured {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export async function run(): Promise<BenchResult> {
  const target = await benchDatabase();
  const database = createDatabase({ url: target.url, poolSize: POOL_SIZE, log });
  try {
    progress(`database: ${target.description}; ${WRITERS} writers, pool ${POOL_SIZE}`);
    await migrate(database.pool, log);
    const events = createEventsService({ db: database.db, clock: systemClock, newId, log });
    const orgId = newId('org');
    let n = 0;
    const emitOne = (tx: Tx) => events.emit(tx, orgId, [{ type: EMITTED.type, payload: { n: n++ } }]);
    const sides = {
      // Keel's transaction helper: the wake-up goes after the commit.
      measured: () => database.transaction(emitOne),
      // A transaction Keel does not track: the NOTIFY goes inside it.
      baseline: () => database.db.transaction().execute(emitOne),
    };

    const drive = async (once: () => Promise<unknown>): Promise<Measured> => {
      const result = await closedLoop(
        { clients: WRITERS, warmupMs: WARMUP_MS, measureMs: MEASURE_MS },
        async () => {
          await once();
          return { done: 1, failed: 0 };
        },
      );
      return { perSecond: result.perSecond, p50Ms: round(result.p50Ms), p99Ms: round(result.p99Ms) };
    };

    const results: Record<'baseline' | 'measured', Measured[]> = { baseline: [], measured: [] };
    for (const [index, order] of roundOrder(ROUNDS).entries()) {
      for (const side of order) {
        const result = await drive(sides[side]);
        results[side].push(result);
        progress(
          `round ${index + 1} ${side === 'measured' ? 'after commit  ' : 'NOTIFY inside '}: ` +
            `${Math.round(result.perSecond)} transactions/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`,
        );
      }
    }
    await events.close();
    const value = median(results.measured.map((r) => r.perSecond));
    const baseline = median(results.baseline.map((r) => r.perSecond));
    return {
      bench: 'events',
      metric: 'emitting_transactions_per_second',
      value: Math.round(value),
      unit: 'transactions/s',
      baseline: Math.round(baseline),
      ratio: round(value / baseline, 3),
      p50_ms: median(results.measured.map((r) => r.p50Ms)),
      p99_ms: median(results.measured.map((r) => r.p99Ms)),
    };
  } finally {
    await database.close();
    await target.close();
  }
}
