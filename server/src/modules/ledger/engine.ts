import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import type { Clock } from '../../infra/clock.ts';
import { type Database, type Tx, trackCommit } from '../../infra/db/database.ts';
import type { Tables } from '../../infra/db/tables.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { GroupOutcome, TransferGroup, TransferRecord } from './domain/model.ts';
import { applyGroups, commandAccounts, type LedgerView } from './domain/posting.ts';
import {
  type BatchClient,
  findOpenHolds,
  findReferences,
  findResolutions,
  findTransfers,
  lockAndRead,
  reversedTotals,
  writeBatch,
} from './store.ts';

/**
 * The write path. Concurrent requests are grouped, per org, into batches that each run as one
 * database transaction, as TigerBeetle batches its clients' requests: the cost of a commit, of
 * locking an account and of updating its balance is paid once per batch rather than once per
 * transfer. Within a batch the posting rules run in memory on the locked rows, so a failing
 * transfer is an outcome and never aborts its neighbours.
 *
 * Several replicas each batch on their own; correctness comes from PostgreSQL alone: rows are
 * locked in one order (deadlock-free), and transfer ids, references and resolutions are unique
 * in the database, so a batch that races another on one of them retries on fresh state.
 */

/** Most transfers in one batch: TigerBeetle's batch size, and the most a bulk request may carry. */
export const MAX_BATCH_TRANSFERS = 8_190;
/** Batches in flight at once per process: they overlap one batch's database work with the next's. */
export const MAX_CONCURRENT_BATCHES = 3;
/**
 * Longest a request waits for others to join its batch while another batch is in flight. With
 * nothing in flight a batch starts at once (at the end of the current event-loop turn).
 */
export const BATCH_LINGER_MS = 1;
/** Queued transfers are split over free batch slots only into batches at least this large. */
export const MIN_SPLIT_TRANSFERS = 64;
/** Transfers queued beyond this are refused with 503, so overload sheds load instead of memory. */
export const MAX_QUEUED_TRANSFERS = 8 * MAX_BATCH_TRANSFERS;
/** Attempts of a batch that lost a race (a unique key taken by a concurrent batch, a deadlock). */
export const MAX_BATCH_ATTEMPTS = 5;

/** PostgreSQL errors after which a batch is retried on fresh state. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '23505']);

/** Thrown to roll a batch back and run it again with strict reads; retried like a unique violation. */
class BatchRaceError extends Error {
  readonly code = '23505';
}

interface Waiting {
  readonly group: TransferGroup;
  readonly resolve: (outcome: GroupOutcome) => void;
  readonly reject: (error: unknown) => void;
}

export interface EngineDeps {
  readonly database: Pick<Database, 'pool'>;
  readonly clock: Clock;
  readonly log: Logger;
  /** Runs in the batch's transaction with every transfer it created (the events call site). */
  readonly onCreated: (tx: Tx, orgId: string, created: readonly TransferRecord[]) => Promise<void>;
  readonly maxBatchTransfers?: number;
  readonly maxConcurrentBatches?: number;
  readonly lingerMs?: number;
  readonly minSplitTransfers?: number;
  /** Called after each committed batch, for metrics. */
  readonly onBatch?: (batch: { transfers: number; durationMs: number; attempts: number }) => void;
}

export interface EngineStats {
  readonly batches: number;
  readonly transfers: number;
  readonly retries: number;
}

export interface Engine {
  /** Queues groups of one org; each settles when the batch holding it commits. */
  submit(groups: readonly TransferGroup[]): Promise<GroupOutcome[]>;
  stats(): EngineStats;
  /** Stops taking work and waits for every queued and in-flight batch. */
  close(): Promise<void>;
}

/** A query builder bound to one pooled connection, made once per connection. */
const boundBuilders = new WeakMap<pg.PoolClient, Tx>();

function builderFor(client: pg.PoolClient): Tx {
  let builder = boundBuilders.get(client);
  if (!builder) {
    // Kysely releases the connection it is given after each query; this one must stay with the
    // batch until its commit, so it is lent through a wrapper whose release does nothing.
    const lent = { query: client.query.bind(client), release: () => {} };
    const kysely = new Kysely<Tables>({
      dialect: new PostgresDialect({ pool: { connect: async () => lent, end: async () => {} } as never }),
    });
    // Every statement it runs is inside the batch's transaction, opened below.
    builder = kysely as unknown as Tx;
    boundBuilders.set(client, builder);
  }
  return builder;
}

/**
 * Runs a batch in one transaction on a raw pooled connection, so that its hot statements can
 * be named prepared statements (Kysely cannot name them); the query builder it also gets runs on
 * the same connection, for the store's other reads and for the events outbox.
 */
async function batchTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, tx: Tx) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  const builder = builderFor(client);
  const tracked = trackCommit(builder);
  let broken: Error | undefined;
  try {
    await client.query('begin');
    const result = await work(client, builder);
    await client.query('commit');
    tracked.committed();
    return result;
  } catch (error) {
    tracked.abandoned();
    await client.query('rollback').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    // A connection that could not roll back is closed rather than returned to the pool.
    client.release(broken);
  }
}

export function createEngine(deps: EngineDeps): Engine {
  const maxBatch = deps.maxBatchTransfers ?? MAX_BATCH_TRANSFERS;
  const maxConcurrent = deps.maxConcurrentBatches ?? MAX_CONCURRENT_BATCHES;
  const lingerMs = deps.lingerMs ?? BATCH_LINGER_MS;
  const minSplit = deps.minSplitTransfers ?? MIN_SPLIT_TRANSFERS;
  /** Queues per org, in the order orgs first queued work: batches take turns between orgs. */
  const queues = new Map<string, Waiting[]>();
  let queued = 0;
  let inFlight = 0;
  let scheduled = false;
  let closed = false;
  let drained: (() => void) | undefined;
  const stats = { batches: 0, transfers: 0, retries: 0 };

  const schedule = () => {
    if (scheduled || queued === 0 || inFlight >= maxConcurrent) return;
    scheduled = true;
    // Idle: start at the end of this turn, which already gathers every request that arrived in it.
    // Busy: linger a little so the next batch is fuller, unless it is already full.
    if (inFlight === 0 || queued >= maxBatch) setImmediate(flush);
    else setTimeout(flush, lingerMs);
  };

  const flush = () => {
    scheduled = false;
    while (inFlight < maxConcurrent && queued > 0) {
      const [orgId, queue] = queues.entries().next().value as [string, Waiting[]];
      // Spread what is queued over the free slots, so that PostgreSQL works on several batches
      // at once, but not into batches so small that their round trips dominate.
      const target = Math.min(maxBatch, Math.max(minSplit, Math.ceil(queued / (maxConcurrent - inFlight))));
      // Taken from the front by slicing rather than shift(): a bulk request queues thousands.
      let taken = 0;
      let size = 0;
      while (taken < queue.length) {
        const next = queue[taken]!.group.transfers.length;
        if (taken > 0 && size + next > target) break;
        taken += 1;
        size += next;
      }
      const batch = queue.slice(0, taken);
      queues.delete(orgId);
      // The org goes to the back of the line; what it has left waits for the next batch.
      if (taken < queue.length) queues.set(orgId, queue.slice(taken));
      queued -= size;
      inFlight += 1;
      void runBatch(orgId, batch, size).finally(() => {
        inFlight -= 1;
        if (inFlight === 0 && queued === 0) drained?.();
        schedule();
      });
    }
  };

  const runBatch = async (orgId: string, batch: readonly Waiting[], size: number) => {
    const groups = batch.map((waiting) => waiting.group);
    const startedAt = performance.now();
    for (let attempt = 1; ; attempt += 1) {
      try {
        const outcomes = await batchTransaction(deps.database.pool, (client, tx) =>
          processBatch(client, tx, orgId, groups, attempt > 1),
        );
        stats.batches += 1;
        stats.transfers += size;
        deps.onBatch?.({ transfers: size, durationMs: performance.now() - startedAt, attempts: attempt });
        for (const [index, waiting] of batch.entries()) waiting.resolve(outcomes[index]!);
        return;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== undefined && RETRYABLE_SQLSTATES.has(code) && attempt < MAX_BATCH_ATTEMPTS) {
          stats.retries += 1;
          deps.log.debug({ orgId, attempt, code }, 'ledger batch lost a race; retrying');
          continue;
        }
        deps.log.error({ err: error, orgId, transfers: size }, 'ledger batch failed');
        for (const waiting of batch) waiting.reject(error);
        return;
      }
    }
  };

  /**
   * One batch, in the caller's transaction. The first attempt reads optimistically (see
   * lockAndRead) and does not look its transfer ids up: a retried id, like a stale read, makes
   * the write collide with a unique index, and the batch is retried strictly, each read its own
   * statement after the locks. Reversals always read strictly: no index bounds their total.
   */
  const processBatch = async (
    client: BatchClient,
    tx: Tx,
    orgId: string,
    groups: readonly TransferGroup[],
    strict: boolean,
  ) => {
    const commands = groups.flatMap((group) => group.transfers);
    // 1. Transfers the batch posts, voids or reverses. They are immutable, so they can be read
    //    before the locks; their accounts are the ones to lock.
    const referencedIds = new Set<string>();
    const reversesIds: string[] = [];
    const references: string[] = [];
    for (const command of commands) {
      if (command.pendingId !== undefined) referencedIds.add(command.pendingId);
      if (command.reversesId !== undefined) {
        referencedIds.add(command.reversesId);
        reversesIds.push(command.reversesId);
      }
      if (command.reference !== null) references.push(command.reference);
    }
    const referenced = new Map((await findTransfers(tx, orgId, [...referencedIds])).map((t) => [t.id, t]));
    const createdHere = new Map<string, { debitAccountId: string; creditAccountId: string }>();
    for (const command of commands) {
      if (command.debitAccountId !== undefined && !createdHere.has(command.id)) {
        createdHere.set(command.id, {
          debitAccountId: command.debitAccountId,
          creditAccountId: command.creditAccountId!,
        });
      }
    }
    const accountIds = new Set<string>();
    for (const command of commands) {
      for (const id of commandAccounts(command, (ref) => referenced.get(ref) ?? createdHere.get(ref))) {
        accountIds.add(id);
      }
    }
    const pendingIds = [...referencedIds].filter((id) => referenced.get(id)?.kind === 'pending');

    // 2. Lock every account of the batch, in id order, and read what the posting rules decide on.
    const careful = strict || reversesIds.length > 0;
    const reads = await lockAndRead(client, orgId, {
      accountIds: [...accountIds].sort(),
      pendingIds: careful ? [] : pendingIds,
      references: careful ? [] : references,
    });
    const view: LedgerView = {
      accounts: new Map(reads.accounts.map((account) => [account.id, account])),
      transfers: referenced,
      openHolds: reads.openHolds,
      resolutions: reads.resolutions,
      references: reads.references,
      reversed: new Map(),
    };
    if (!careful && pendingIds.some((id) => !view.openHolds.has(id) && !view.resolutions.has(id))) {
      throw new BatchRaceError('a hold was released by a batch this statement could not see yet');
    }
    if (careful) {
      // Each statement after the locks sees what every batch that held them before committed.
      if (strict) {
        for (const existing of await findTransfers(
          tx,
          orgId,
          commands.map((command) => command.id),
        )) {
          view.transfers.set(existing.id, existing);
        }
      }
      for (const [id, expiresAt] of await findOpenHolds(tx, orgId, pendingIds))
        view.openHolds.set(id, expiresAt);
      const closed = pendingIds.filter((id) => !view.openHolds.has(id));
      for (const [id, resolution] of await findResolutions(tx, orgId, closed))
        view.resolutions.set(id, resolution.kind);
      for (const [reference, id] of await findReferences(tx, orgId, references))
        view.references.set(reference, id);
      for (const [id, total] of await reversedTotals(tx, orgId, reversesIds)) view.reversed.set(id, total);
    }

    // 3. The posting rules, in memory. Time is read after the locks, so that the transfers of an
    //    account carry times in the order they were applied.
    const { outcomes, writes } = applyGroups(view, groups, deps.clock.now());

    if (!strict) {
      // A failure is only true of a new transfer: a retried one may fail now (its funds were
      // spent since) though it succeeded then. If a failed group reuses a written id, go strict.
      const failedIds = outcomes.flatMap((outcome, index) =>
        outcome.ok ? [] : groups[index]!.transfers.map((command) => command.id),
      );
      if (failedIds.length > 0 && (await findTransfers(tx, orgId, failedIds)).length > 0) {
        throw new BatchRaceError('a failed transfer of this batch was written before');
      }
    }

    // 4. Every row in one statement, then the events.
    const inserted = await writeBatch(client, orgId, writes);
    if (inserted !== writes.transfers.length) {
      throw new BatchRaceError('a transfer id, reference or resolution of this batch is already taken');
    }
    if (writes.transfers.length > 0) await deps.onCreated(tx, orgId, writes.transfers);
    return outcomes;
  };

  return {
    submit(groups) {
      if (closed) return Promise.reject(new KeelError('SERVICE_UNAVAILABLE', 'The ledger is shutting down'));
      const size = groups.reduce((sum, group) => sum + group.transfers.length, 0);
      if (queued + size > MAX_QUEUED_TRANSFERS) {
        return Promise.reject(
          new KeelError('SERVICE_UNAVAILABLE', 'The ledger has too many transfers queued; retry shortly', {
            headers: { 'retry-after': '1' },
          }),
        );
      }
      // A programmer error: the API bounds requests below the batch size.
      if (groups.some((group) => group.transfers.length > maxBatch)) {
        throw new Error(`a transfer group holds at most ${maxBatch} transfers`);
      }
      const promises = groups.map((group) => {
        return new Promise<GroupOutcome>((resolve, reject) => {
          const queue = queues.get(group.orgId);
          const waiting = { group, resolve, reject };
          if (queue) queue.push(waiting);
          else queues.set(group.orgId, [waiting]);
        });
      });
      queued += size;
      schedule();
      return Promise.all(promises);
    },
    stats: () => ({ ...stats }),
    async close() {
      closed = true;
      if (inFlight === 0 && queued === 0) return;
      await new Promise<void>((resolve) => {
        drained = resolve;
      });
    },
  };
}
