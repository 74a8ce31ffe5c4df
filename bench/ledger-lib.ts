// The ledger benchmarks' shared body: 64 concurrent clients write transfers for a fixed time,
// first one PostgreSQL transaction per transfer with row locks (the pgledger approach, the
// baseline), then through Keel's ledger service, whose engine batches them. Both run in this
// process against the same PostgreSQL and the same tables; the clients call the service layer
// directly (no HTTP), so the figure is the ledger's, not Fastify's.
import { sql } from 'kysely';
import pg from 'pg';
import { systemClock } from '../server/src/infra/clock.ts';
import { createDatabase, type Database } from '../server/src/infra/db/database.ts';
import { migrate } from '../server/src/infra/db/migrate.ts';
import { newId } from '../server/src/infra/ids.ts';
import { createLogger } from '../server/src/infra/observability/logger.ts';
import { createLedgerService } from '../server/src/modules/ledger/index.ts';
import { createEventsService } from '../server/src/platform/events/index.ts';
import { type BenchResult, benchDatabase, closedLoop, median, progress, round, roundOrder } from './lib.ts';

/** Concurrent clients, each with one transfer in flight at a time. */
export const CLIENTS = 64;
/** How long each side is measured, after its warm-up. */
export const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 5_000);
export const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1_000);
/** Rounds per side, interleaved (baseline first, then measured first, ...): the result is their median. */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Transfers per request in the bulk variant (reported on a progress line, not the result line). */
export const BULK_REQUEST_TRANSFERS = 100;
/** Connections of the baseline: one transaction per transfer needs a connection per client in flight. */
export const BASELINE_POOL_SIZE = 32;
/** Connections of Keel's ledger: its engine runs a few batches at once. */
export const LEDGER_POOL_SIZE = 10;
const ACCOUNT_INSERT_CHUNK = 5_000;

interface Measured {
  readonly transfersPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failures: number;
}

const log = createLogger({ level: 'error', pretty: false, name: 'bench' });

/** `CLIENTS` loops of `once`, which answers how many transfers it wrote and how many failed. */
async function drive(once: () => Promise<{ written: number; failed: number }>): Promise<Measured> {
  const result = await closedLoop(
    { clients: CLIENTS, warmupMs: WARMUP_MS, measureMs: MEASURE_MS },
    async () => {
      const { written, failed } = await once();
      return { done: written, failed };
    },
  );
  return {
    transfersPerSecond: result.perSecond,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    failures: result.failures,
  };
}

async function createAccounts(database: Database, orgId: string, count: number): Promise<string[]> {
  await sql`insert into ledger_assets (org_id, code, scale, created_at) values (${orgId}, 'USD', 2, now())`.execute(
    database.db,
  );
  const ids = Array.from({ length: count }, () => newId('acc'));
  for (let offset = 0; offset < ids.length; offset += ACCOUNT_INSERT_CHUNK) {
    const chunk = ids.slice(offset, offset + ACCOUNT_INSERT_CHUNK);
    await sql`insert into ledger_accounts (org_id, id, asset, name, created_at)
      select ${orgId}, id, 'USD', 'bench', now() from unnest(${chunk}::text[]) as u(id)`.execute(database.db);
  }
  return ids;
}

function pickPair(accounts: readonly string[]): [string, string] {
  const debit = Math.floor(Math.random() * accounts.length);
  let credit = Math.floor(Math.random() * (accounts.length - 1));
  if (credit >= debit) credit += 1;
  return [accounts[debit]!, accounts[credit]!];
}

/**
 * The baseline: what a ledger on PostgreSQL does without batching (pgledger): per transfer, one
 * transaction that locks both account rows in id order, inserts the transfer and updates both
 * balances.
 */
async function baseline(url: string, orgId: string, accounts: readonly string[]): Promise<Measured> {
  const pool = new pg.Pool({ connectionString: url, max: BASELINE_POOL_SIZE });
  try {
    return await drive(async () => {
      const [debit, credit] = pickPair(accounts);
      const amount = String(1 + Math.floor(Math.random() * 1000));
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query(
          'select id from ledger_accounts where org_id = $1 and id = any($2::text[]) order by id for no key update',
          [orgId, [debit, credit]],
        );
        await client.query(
          `insert into ledger_transfers (org_id, id, kind, debit_account_id, credit_account_id, asset, amount, created_at)
           values ($1, $2, 'posted', $3, $4, 'USD', $5, now())`,
          [orgId, newId('trf'), debit, credit, amount],
        );
        await client.query(
          `update ledger_accounts set
             debits_posted = debits_posted + case when id = $3 then $4::numeric else 0 end,
             credits_posted = credits_posted + case when id = $2 then 0 else $4::numeric end
           where org_id = $1 and id = any(array[$2, $3])`,
          [orgId, credit, debit, amount],
        );
        await client.query('commit');
        return { written: 1, failed: 0 };
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
  } finally {
    await pool.end();
  }
}

function transferRequest(accounts: readonly string[]) {
  const [debit, credit] = pickPair(accounts);
  return {
    id: newId('trf'),
    debitAccountId: debit,
    creditAccountId: credit,
    asset: 'USD',
    amount: String(1 + Math.floor(Math.random() * 1000)),
  };
}

/**
 * Keel's ledger through its service. `perRequest` 1: each client sends single transfers (the
 * headline, shaped like the baseline). More: each client sends bulk requests of that many
 * transfers, as TigerBeetle's clients do.
 */
async function keel(url: string, orgId: string, accounts: readonly string[], perRequest: number) {
  const database = createDatabase({ url, poolSize: LEDGER_POOL_SIZE, log });
  const events = createEventsService({ db: database.db, clock: systemClock, newId });
  const ledger = createLedgerService({ database, clock: systemClock, newId, log, events });
  try {
    const measured = await drive(async () => {
      if (perRequest === 1) {
        const result = await ledger.createTransfer(orgId, transferRequest(accounts));
        return result.ok ? { written: 1, failed: 0 } : { written: 0, failed: 1 };
      }
      const results = await ledger.createTransfers(
        orgId,
        Array.from({ length: perRequest }, () => transferRequest(accounts)),
      );
      const written = results.filter((result) => result.status === 'created').length;
      return { written, failed: results.length - written };
    });
    const stats = ledger.engineStats();
    const reconciliation = await ledger.reconcile(orgId);
    return { measured, stats, reconciled: reconciliation.ok };
  } finally {
    await ledger.close();
    await events.close();
    await database.close();
  }
}

export async function runLedgerBench(options: { name: string; accounts: number }): Promise<BenchResult> {
  const database = await benchDatabase();
  try {
    const migrations = new pg.Pool({ connectionString: database.url, max: 2 });
    await migrate(migrations, log);
    await migrations.end();
    const setup = createDatabase({ url: database.url, poolSize: 2, log });
    const baselineOrg = newId('org');
    const keelOrg = newId('org');
    const baselineAccounts = await createAccounts(setup, baselineOrg, options.accounts);
    const keelAccounts = await createAccounts(setup, keelOrg, options.accounts);
    await sql`analyze`.execute(setup.db);
    await setup.close();
    progress(
      `# ${options.name}: ${CLIENTS} concurrent clients, one transfer in flight each, over ${options.accounts} accounts; ` +
        `${ROUNDS} interleaved rounds of ${MEASURE_MS} ms (after ${WARMUP_MS} ms warm-up) per side; ${database.description}`,
    );
    const baselineRounds: Measured[] = [];
    const keelRounds: Measured[] = [];
    const bulkRounds: Measured[] = [];
    for (const [index, order] of roundOrder(ROUNDS).entries()) {
      for (const side of order) {
        if (side === 'baseline') {
          const measured = await baseline(database.url, baselineOrg, baselineAccounts);
          baselineRounds.push(measured);
          progress(`# round ${index + 1} baseline: ${describe(measured)}`);
        } else {
          for (const perRequest of [1, BULK_REQUEST_TRANSFERS]) {
            const { measured, stats, reconciled } = await keel(
              database.url,
              keelOrg,
              keelAccounts,
              perRequest,
            );
            (perRequest === 1 ? keelRounds : bulkRounds).push(measured);
            progress(
              `# round ${index + 1} keel${perRequest === 1 ? '' : ` bulk (${perRequest} transfers per request)`}: ${describe(measured)}; ` +
                `${stats.batches} batches of ${round1(stats.transfers / Math.max(1, stats.batches))} transfers on average, ${stats.retries} retried; ` +
                `reconciliation ${reconciled ? 'ok' : 'FAILED'}`,
            );
            if (!reconciled) throw new Error('the ledger did not reconcile after the benchmark');
          }
        }
      }
    }
    const value = median(keelRounds.map((m) => m.transfersPerSecond));
    const base = median(baselineRounds.map((m) => m.transfersPerSecond));
    const result: BenchResult = {
      bench: options.name,
      metric: 'transfers_per_second',
      value: round(value, 0),
      unit: 'transfers/s',
      baseline: round(base, 0),
      ratio: round(value / base),
      p50_ms: round(median(keelRounds.map((m) => m.p50Ms))),
      p99_ms: round(median(keelRounds.map((m) => m.p99Ms))),
    };
    progress(
      `# medians, bulk requests of ${BULK_REQUEST_TRANSFERS}: keel ${round(median(bulkRounds.map((m) => m.transfersPerSecond)), 0)} transfers/s ` +
        `(request p50 ${round(median(bulkRounds.map((m) => m.p50Ms)))} ms, p99 ${round(median(bulkRounds.map((m) => m.p99Ms)))} ms), ` +
        `ratio ${round(median(bulkRounds.map((m) => m.transfersPerSecond)) / base)} to the baseline`,
    );
    progress(
      `# medians: keel ${result.value} transfers/s (p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms); ` +
        `baseline (one transaction per transfer, row locks, pool ${BASELINE_POOL_SIZE}) ${result.baseline} transfers/s ` +
        `(p50 ${round(median(baselineRounds.map((m) => m.p50Ms)))} ms, p99 ${round(median(baselineRounds.map((m) => m.p99Ms)))} ms); ratio ${result.ratio}`,
    );
    return result;
  } finally {
    await database.close();
  }
}

const round1 = (value: number) => round(value, 1);
const describe = (m: Measured) =>
  `${round(m.transfersPerSecond, 0)} transfers/s, p50 ${round(m.p50Ms)} ms, p99 ${round(m.p99Ms)} ms, ${m.failures} failed`;
