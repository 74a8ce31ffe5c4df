import type { Clock } from '../../infra/clock.ts';
import type { Database, Tx } from '../../infra/db/database.ts';
import type { FieldError } from '../../infra/http/errors.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { EventsService } from '../../platform/events/index.ts';
import { derivedId } from './domain/ids.ts';
import {
  availableBalance,
  type Balances,
  canonicalJson,
  type GroupOutcome,
  type LedgerFailure,
  type Metadata,
  postedBalance,
  type TransferCommand,
  type TransferGroup,
  type TransferRecord,
} from './domain/model.ts';
import { parseTransferRequest, type TransferRequest } from './domain/requests.ts';
import { createEngine, type Engine, type EngineDeps } from './engine.ts';
import {
  ACCOUNT_CREATED,
  emitLedgerEvents,
  type LedgerEvent,
  TRANSFER_PENDING,
  TRANSFER_POSTED,
  TRANSFER_VOIDED,
} from './events.ts';
import { MAX_METADATA_BYTES, type TransferJson } from './schemas.ts';
import * as store from './store.ts';

/** Expired holds released per round of the expiry job (one engine submission each). */
export const EXPIRY_BATCH_SIZE = 1_000;
/** Rounds one run of the expiry job may take; the next run continues. */
export const MAX_EXPIRY_ROUNDS = 100;
/**
 * A snapshot is taken this long in the past, so that no transaction still running can commit a
 * transfer dated before it (a batch lasts milliseconds; statements time out after 30 s).
 */
export const SNAPSHOT_SETTLE_MS = 5 * 60 * 1000;
/** Accounts snapshotted per statement by the snapshot job. */
export const SNAPSHOT_PAGE_SIZE = 1_000;
/** Accounts with mismatched balances a reconciliation lists at most. */
export const MAX_RECONCILIATION_MISMATCHES = 100;

export interface LedgerServiceDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly log: Logger;
  readonly events: Pick<EventsService, 'emit'>;
  readonly engine?: Pick<EngineDeps, 'maxBatchTransfers' | 'maxConcurrentBatches' | 'lingerMs' | 'onBatch'>;
}

export interface AssetJson {
  code: string;
  scale: number;
  description: string | null;
  createdAt: string;
}

export interface BalanceJson {
  debitsPosted: string;
  creditsPosted: string;
  debitsPending: string;
  creditsPending: string;
  posted: string;
  available: string;
}

export interface AccountJson {
  id: string;
  asset: string;
  name: string;
  code: string | null;
  metadata: Metadata | null;
  debitsMustNotExceedCredits: boolean;
  creditsMustNotExceedDebits: boolean;
  overdraftLimit: string | null;
  balance: BalanceJson;
  createdAt: string;
}

export interface CreateAccountInput {
  id?: string;
  asset: string;
  name: string;
  code?: string;
  metadata?: Metadata;
  debitsMustNotExceedCredits?: boolean;
  creditsMustNotExceedDebits?: boolean;
  overdraftLimit?: string;
}

/** A service-level outcome: a value on success, and on an expected failure. */
export type Result<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly code:
        | LedgerFailure['code']
        | 'NOT_FOUND'
        | 'ASSET_NOT_FOUND'
        | 'ASSET_EXISTS'
        | 'ACCOUNT_ID_CONFLICT';
      readonly detail: string;
      readonly members?: Readonly<Record<string, string | number>>;
    };

/** The request was malformed in a way the schema could not say: every bad field, at once. */
export class LedgerValidationError extends Error {
  constructor(readonly errors: readonly FieldError[]) {
    super(errors.map((error) => `${error.in}${error.path} ${error.message}`).join('; '));
    this.name = 'LedgerValidationError';
  }
}

export interface WriteOptions {
  /** The request's Idempotency-Key: when the client sent no ids, the ids derive from it. */
  readonly idempotencyKey?: string;
}

export interface BulkResult {
  index: number;
  status: 'created' | 'exists' | 'failed';
  transfer?: TransferJson;
  error?: { code: string; detail: string; [member: string]: string };
}

export interface BalanceTotals {
  debitsPosted: string;
  creditsPosted: string;
  debitsPending: string;
  creditsPending: string;
}

export interface Reconciliation {
  ok: boolean;
  checkedAt: string;
  assets: store.AssetTotals[];
  mismatches: { accountId: string; stored: BalanceTotals; journal: BalanceTotals }[];
  holds: { open: number; total: string; pendingBalance: string };
}

export interface LedgerService {
  createAsset(
    orgId: string,
    input: { code: string; scale: number; description?: string },
  ): Promise<Result<{ asset: AssetJson; created: boolean }>>;
  getAsset(orgId: string, code: string): Promise<AssetJson | undefined>;
  listAssets(
    orgId: string,
    page: { cursor?: string; limit: number },
  ): Promise<{ data: AssetJson[]; nextCursor: string | null }>;
  createAccount(
    orgId: string,
    input: CreateAccountInput,
    options?: WriteOptions,
  ): Promise<Result<{ account: AccountJson; created: boolean }>>;
  getAccount(orgId: string, id: string): Promise<AccountJson | undefined>;
  listAccounts(
    orgId: string,
    query: { cursor?: string; limit: number; asset?: string; code?: string },
  ): Promise<{ data: AccountJson[]; nextCursor: string | null }>;
  /** The balance now, or as it was at `at`. */
  getBalance(
    orgId: string,
    accountId: string,
    at?: Date,
  ): Promise<(BalanceJson & { accountId: string; asset: string; at: string | null }) | undefined>;
  /** The account's transfers, newest first; undefined when the account does not exist. */
  listAccountTransfers(
    orgId: string,
    accountId: string,
    page: { cursor?: string; limit: number },
  ): Promise<{ data: TransferJson[]; nextCursor: string | null } | undefined>;
  createTransfer(
    orgId: string,
    request: TransferRequest,
    options?: WriteOptions,
  ): Promise<Result<{ transfer: TransferJson; created: boolean }>>;
  /** Independent transfers: each succeeds or fails on its own. */
  createTransfers(
    orgId: string,
    requests: readonly TransferRequest[],
    options?: WriteOptions,
  ): Promise<BulkResult[]>;
  /** Transfers that commit together or not at all. */
  createTransaction(
    orgId: string,
    input: { id?: string; transfers: readonly TransferRequest[] },
    options?: WriteOptions,
  ): Promise<Result<{ id: string; transfers: TransferJson[]; created: boolean }>>;
  getTransfer(orgId: string, id: string): Promise<TransferJson | undefined>;
  findTransferByReference(orgId: string, reference: string): Promise<TransferJson | undefined>;
  getTransaction(orgId: string, id: string): Promise<{ id: string; transfers: TransferJson[] } | undefined>;
  /** Checks the ledger's invariants for one org. */
  reconcile(orgId: string): Promise<Reconciliation>;
  /** Releases holds past their timeout; returns how many. */
  expireHolds(): Promise<number>;
  /** Writes balance snapshots for accounts that moved; returns how many. */
  writeSnapshots(): Promise<number>;
  engineStats(): ReturnType<Engine['stats']>;
  close(): Promise<void>;
}

const iso = (date: Date) => date.toISOString();

function balanceJson(account: Balances & Parameters<typeof postedBalance>[0]): BalanceJson {
  return {
    debitsPosted: account.debitsPosted.toString(),
    creditsPosted: account.creditsPosted.toString(),
    debitsPending: account.debitsPending.toString(),
    creditsPending: account.creditsPending.toString(),
    posted: postedBalance(account).toString(),
    available: availableBalance(account).toString(),
  };
}

function accountFromRow(row: store.AccountRow) {
  return {
    debitsMustNotExceedCredits: row.debits_must_not_exceed_credits,
    creditsMustNotExceedDebits: row.credits_must_not_exceed_debits,
    overdraftLimit: row.overdraft_limit === null ? null : BigInt(row.overdraft_limit),
    debitsPosted: BigInt(row.debits_posted),
    creditsPosted: BigInt(row.credits_posted),
    debitsPending: BigInt(row.debits_pending),
    creditsPending: BigInt(row.credits_pending),
  };
}

function accountJson(row: store.AccountRow): AccountJson {
  return {
    id: row.id,
    asset: row.asset,
    name: row.name,
    code: row.code,
    metadata: row.metadata,
    debitsMustNotExceedCredits: row.debits_must_not_exceed_credits,
    creditsMustNotExceedDebits: row.credits_must_not_exceed_debits,
    overdraftLimit: row.overdraft_limit,
    balance: balanceJson(accountFromRow(row)),
    createdAt: iso(row.created_at),
  };
}

const assetJson = (row: store.AssetRow): AssetJson => ({
  code: row.code,
  scale: row.scale,
  description: row.description,
  createdAt: iso(row.created_at),
});

type PendingStatus = 'pending' | 'posted' | 'voided' | 'expired';
const RESOLUTION_STATUS: Record<string, PendingStatus> = {
  post: 'posted',
  void: 'voided',
  expire: 'expired',
};

export function transferJson(record: TransferRecord, status?: PendingStatus): TransferJson {
  return {
    id: record.id,
    type: record.kind,
    debitAccountId: record.debitAccountId,
    creditAccountId: record.creditAccountId,
    asset: record.asset,
    amount: record.amount.toString(),
    pendingId: record.pendingId,
    reversesId: record.reversesId,
    transactionId: record.transactionId,
    timeoutAt: record.timeoutAt && iso(record.timeoutAt),
    ...(status !== undefined && { status }),
    code: record.code,
    reference: record.reference,
    metadata: record.metadata as TransferJson['metadata'],
    createdAt: iso(record.createdAt),
  };
}

function eventFor(record: TransferRecord): LedgerEvent {
  switch (record.kind) {
    case 'pending':
      return { type: TRANSFER_PENDING.type, payload: transferJson(record, 'pending') };
    case 'void':
    case 'expire':
      return { type: TRANSFER_VOIDED.type, payload: transferJson(record) };
    default:
      return { type: TRANSFER_POSTED.type, payload: transferJson(record) };
  }
}

const encodeCursor = (value: string) => Buffer.from(value).toString('base64url');
const decodeCursor = (cursor: string | undefined) =>
  cursor === undefined ? undefined : Buffer.from(cursor, 'base64url').toString('utf8');

function invalidCursor(): never {
  throw new LedgerValidationError([
    { path: '/cursor', in: 'query', message: 'is not a cursor returned by this API' },
  ]);
}

function metadataErrors(metadata: Metadata | undefined, pointer: string): FieldError[] {
  if (metadata === undefined) return [];
  return Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES
    ? [
        {
          path: `${pointer}/metadata`,
          in: 'body',
          message: `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
        },
      ]
    : [];
}

function failure(outcome: Extract<GroupOutcome, { ok: false }>, transaction: boolean): Result<never> {
  return {
    ok: false,
    code: outcome.error.code,
    detail: transaction ? `Transfer ${outcome.index}: ${outcome.error.detail}` : outcome.error.detail,
    members: {
      ...outcome.error.members,
      transferId: outcome.transferId,
      ...(transaction && { index: outcome.index }),
    },
  };
}

export function createLedgerService(deps: LedgerServiceDeps): LedgerService {
  const { database, clock, newId, log, events } = deps;
  const { db } = database;

  const engine = createEngine({
    database,
    clock,
    log,
    ...deps.engine,
    onCreated: (tx: Tx, orgId: string, created: readonly TransferRecord[]) =>
      emitLedgerEvents(events, tx, orgId, created.map(eventFor)),
  });

  /** Ids for transfers sent without one: derived from the key (or transaction) when there is one. */
  const transferIdFor = (seed: string | undefined) =>
    seed === undefined ? newId('trf') : derivedId('trf', seed);

  const parseAll = (requests: readonly TransferRequest[], ids: readonly string[], pointer: string) => {
    const commands: TransferCommand[] = [];
    const errors: FieldError[] = [];
    for (const [index, request] of requests.entries()) {
      const itemPointer = `${pointer}/${index}`;
      const parsed = parseTransferRequest(request, ids[index]!, pointer === '' ? '' : itemPointer);
      const tooLarge = metadataErrors(request.metadata, pointer === '' ? '' : itemPointer);
      if (parsed.errors) errors.push(...parsed.errors);
      errors.push(...tooLarge);
      if (parsed.command) commands.push(parsed.command);
    }
    if (errors.length > 0) throw new LedgerValidationError(errors);
    return commands;
  };

  /** Adds each pending transfer's status: open, or how it was settled. */
  const withStatuses = async (orgId: string, records: readonly TransferRecord[]): Promise<TransferJson[]> => {
    const pendingIds = records.filter((record) => record.kind === 'pending').map((record) => record.id);
    const open = await store.findOpenHolds(db, orgId, pendingIds);
    const resolutions = await store.findResolutions(
      db,
      orgId,
      pendingIds.filter((id) => !open.has(id)),
    );
    return records.map((record) => {
      if (record.kind !== 'pending') return transferJson(record);
      const resolution = resolutions.get(record.id);
      return transferJson(record, resolution ? RESOLUTION_STATUS[resolution.kind] : 'pending');
    });
  };

  return {
    async createAsset(orgId, input) {
      const { row, created } = await store.upsertAsset(db, orgId, {
        code: input.code,
        scale: input.scale,
        description: input.description ?? null,
        createdAt: clock.now(),
      });
      if (
        !created &&
        (row.scale !== input.scale || row.description !== (input.description ?? row.description))
      ) {
        return {
          ok: false,
          code: 'ASSET_EXISTS',
          detail: `Asset ${input.code} already exists with scale ${row.scale}`,
          members: { scale: row.scale },
        };
      }
      return { ok: true, value: { asset: assetJson(row), created } };
    },

    async getAsset(orgId, code) {
      const row = await store.findAsset(db, orgId, code);
      return row && assetJson(row);
    },

    async listAssets(orgId, page) {
      const rows = await store.listAssets(db, orgId, decodeCursor(page.cursor), page.limit);
      return {
        data: rows.map(assetJson),
        nextCursor: rows.length === page.limit ? encodeCursor(rows.at(-1)!.code) : null,
      };
    },

    async createAccount(orgId, input, options = {}) {
      const errors: FieldError[] = metadataErrors(input.metadata, '');
      if (input.debitsMustNotExceedCredits && input.creditsMustNotExceedDebits) {
        errors.push({
          path: '/creditsMustNotExceedDebits',
          in: 'body',
          message: 'cannot be set together with debitsMustNotExceedCredits',
        });
      }
      if (errors.length > 0) throw new LedgerValidationError(errors);
      const id =
        input.id ??
        (options.idempotencyKey === undefined
          ? newId('acc')
          : derivedId('acc', `${orgId}:${options.idempotencyKey}`));
      return database.transaction(async (tx): Promise<Result<{ account: AccountJson; created: boolean }>> => {
        if (!(await store.findAsset(tx, orgId, input.asset))) {
          return {
            ok: false,
            code: 'ASSET_NOT_FOUND',
            detail: `Asset ${input.asset} does not exist; create it first`,
          };
        }
        const wanted = {
          id,
          asset: input.asset,
          name: input.name,
          code: input.code ?? null,
          metadata: input.metadata ?? null,
          debitsMustNotExceedCredits: input.debitsMustNotExceedCredits ?? false,
          creditsMustNotExceedDebits: input.creditsMustNotExceedDebits ?? false,
          overdraftLimit: input.overdraftLimit === undefined ? null : BigInt(input.overdraftLimit),
          createdAt: clock.now(),
        };
        const row = await store.insertAccount(tx, orgId, wanted);
        if (row) {
          const account = accountJson(row);
          await emitLedgerEvents(events, tx, orgId, [{ type: ACCOUNT_CREATED.type, payload: account }]);
          return { ok: true, value: { account, created: true } };
        }
        // The id exists: a retry of the same request answers with the account, anything else conflicts.
        const existing = (await store.findAccount(tx, orgId, id))!;
        const same =
          existing.asset === wanted.asset &&
          existing.name === wanted.name &&
          existing.code === wanted.code &&
          canonicalJson(existing.metadata) === canonicalJson(wanted.metadata) &&
          existing.debits_must_not_exceed_credits === wanted.debitsMustNotExceedCredits &&
          existing.credits_must_not_exceed_debits === wanted.creditsMustNotExceedDebits &&
          existing.overdraft_limit ===
            (wanted.overdraftLimit === null ? null : wanted.overdraftLimit.toString());
        if (!same) {
          return {
            ok: false,
            code: 'ACCOUNT_ID_CONFLICT',
            detail: `Account ${id} already exists with different fields`,
            members: { accountId: id },
          };
        }
        return { ok: true, value: { account: accountJson(existing), created: false } };
      });
    },

    async getAccount(orgId, id) {
      const row = await store.findAccount(db, orgId, id);
      return row && accountJson(row);
    },

    async listAccounts(orgId, query) {
      const rows = await store.listAccounts(db, orgId, {
        after: decodeCursor(query.cursor),
        limit: query.limit,
        ...(query.asset !== undefined && { asset: query.asset }),
        ...(query.code !== undefined && { code: query.code }),
      });
      return {
        data: rows.map(accountJson),
        nextCursor: rows.length === query.limit ? encodeCursor(rows.at(-1)!.id) : null,
      };
    },

    async getBalance(orgId, accountId, at) {
      const row = await store.findAccount(db, orgId, accountId);
      if (!row) return undefined;
      const flags = accountFromRow(row);
      const balances = at === undefined ? flags : await store.balancesAt(db, orgId, accountId, at);
      return {
        accountId,
        asset: row.asset,
        at: at === undefined ? null : iso(at),
        ...balanceJson({ ...flags, ...balances }),
      };
    },

    async listAccountTransfers(orgId, accountId, page) {
      if (!(await store.findAccount(db, orgId, accountId))) return undefined;
      let before: { createdAt: Date; id: string } | undefined;
      const decoded = decodeCursor(page.cursor);
      if (decoded !== undefined) {
        const [time, id] = decoded.split('|');
        const createdAt = new Date(time ?? '');
        if (!id || Number.isNaN(createdAt.getTime())) invalidCursor();
        before = { createdAt, id };
      }
      const records = await store.listAccountTransfers(db, orgId, accountId, { before, limit: page.limit });
      const last = records.at(-1);
      return {
        data: await withStatuses(orgId, records),
        nextCursor:
          records.length === page.limit && last ? encodeCursor(`${iso(last.createdAt)}|${last.id}`) : null,
      };
    },

    async createTransfer(orgId, request, options = {}) {
      const id = request.id ?? transferIdFor(options.idempotencyKey && `${orgId}:${options.idempotencyKey}`);
      const [command] = parseAll([request], [id], '');
      const [outcome] = await engine.submit([{ orgId, transactionId: null, transfers: [command!] }]);
      if (!outcome!.ok) return failure(outcome!, false);
      const { transfer, created } = outcome!.transfers[0]!;
      const [json] = created
        ? [transferJson(transfer, transfer.kind === 'pending' ? 'pending' : undefined)]
        : await withStatuses(orgId, [transfer]);
      return { ok: true, value: { transfer: json!, created } };
    },

    async createTransfers(orgId, requests, options = {}) {
      const ids = requests.map(
        (request, index) =>
          request.id ??
          transferIdFor(options.idempotencyKey && `${orgId}:${options.idempotencyKey}:${index}`),
      );
      const commands = parseAll(requests, ids, '/transfers');
      const groups: TransferGroup[] = commands.map((command) => ({
        orgId,
        transactionId: null,
        transfers: [command],
      }));
      const outcomes = await engine.submit(groups);
      return outcomes.map((outcome, index): BulkResult => {
        if (!outcome.ok) {
          return {
            index,
            status: 'failed',
            error: { code: outcome.error.code, detail: outcome.error.detail, ...outcome.error.members },
          };
        }
        const { transfer, created } = outcome.transfers[0]!;
        return {
          index,
          status: created ? 'created' : 'exists',
          transfer: transferJson(transfer, transfer.kind === 'pending' && created ? 'pending' : undefined),
        };
      });
    },

    async createTransaction(orgId, input, options = {}) {
      const transactionId =
        input.id ??
        (options.idempotencyKey === undefined
          ? newId('txn')
          : derivedId('txn', `${orgId}:${options.idempotencyKey}`));
      // Given or derived, the transaction id anchors its transfers' ids: a retry writes nothing twice.
      const anchored = input.id !== undefined || options.idempotencyKey !== undefined;
      const ids = input.transfers.map(
        (request, index) =>
          request.id ?? transferIdFor(anchored ? `${orgId}:${transactionId}:${index}` : undefined),
      );
      const commands = parseAll(input.transfers, ids, '/transfers');
      const [outcome] = await engine.submit([{ orgId, transactionId, transfers: commands }]);
      if (!outcome!.ok) return failure(outcome!, true);
      const records = outcome!.transfers.map((result) => result.transfer);
      return {
        ok: true,
        value: {
          id: transactionId,
          transfers: await withStatuses(orgId, records),
          created: outcome!.transfers.some((result) => result.created),
        },
      };
    },

    async getTransfer(orgId, id) {
      const records = await store.findTransfers(db, orgId, [id]);
      return records.length === 0 ? undefined : (await withStatuses(orgId, records))[0];
    },

    async findTransferByReference(orgId, reference) {
      const record = await store.findTransferByReference(db, orgId, reference);
      return record && (await withStatuses(orgId, [record]))[0];
    },

    async getTransaction(orgId, id) {
      const records = await store.findTransactionTransfers(db, orgId, id);
      return records.length === 0 ? undefined : { id, transfers: await withStatuses(orgId, records) };
    },

    async reconcile(orgId) {
      // One snapshot for every check, so balances and journal are compared at the same instant.
      return db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (tx) => {
          const assets = await store.assetTotals(tx, orgId);
          const mismatches = await store.balanceMismatches(tx, orgId, MAX_RECONCILIATION_MISMATCHES);
          const holds = await store.openHoldTotal(tx, orgId);
          const pendingBalance = await store.pendingTotal(tx, orgId);
          const four = (balances: Balances) => ({
            debitsPosted: balances.debitsPosted.toString(),
            creditsPosted: balances.creditsPosted.toString(),
            debitsPending: balances.debitsPending.toString(),
            creditsPending: balances.creditsPending.toString(),
          });
          const ok =
            assets.every(
              (asset) => BigInt(asset.postedImbalance) === 0n && BigInt(asset.pendingImbalance) === 0n,
            ) &&
            mismatches.length === 0 &&
            BigInt(holds.total) === BigInt(pendingBalance);
          return {
            ok,
            checkedAt: iso(clock.now()),
            assets,
            mismatches: mismatches.map((mismatch) => ({
              accountId: mismatch.accountId,
              stored: four(mismatch.stored),
              journal: four(mismatch.journal),
            })),
            holds: { open: holds.holds, total: holds.total, pendingBalance },
          };
        });
    },

    async expireHolds() {
      let released = 0;
      for (let round = 0; round < MAX_EXPIRY_ROUNDS; round += 1) {
        const expired = await store.findExpiredHolds(db, clock.now(), EXPIRY_BATCH_SIZE);
        const byOrg = new Map<string, TransferGroup[]>();
        for (const hold of expired) {
          const group: TransferGroup = {
            orgId: hold.org_id,
            transactionId: null,
            transfers: [
              {
                // Every replica's job derives the same id, so two that race release the hold once.
                id: derivedId('trf', `expire:${hold.org_id}:${hold.transfer_id}`),
                kind: 'expire',
                pendingId: hold.transfer_id,
                code: null,
                reference: null,
                metadata: null,
              },
            ],
          };
          byOrg.set(hold.org_id, [...(byOrg.get(hold.org_id) ?? []), group]);
        }
        const outcomes = (
          await Promise.all([...byOrg.values()].map((groups) => engine.submit(groups)))
        ).flat();
        released += outcomes.filter((outcome) => outcome.ok && outcome.transfers[0]!.created).length;
        if (expired.length < EXPIRY_BATCH_SIZE) break;
      }
      return released;
    },

    async writeSnapshots() {
      const asOf = new Date(clock.now().getTime() - SNAPSHOT_SETTLE_MS);
      let after: { orgId: string; accountId: string } | undefined;
      let written = 0;
      do {
        const page = await store.writeSnapshotPage(db, asOf, after, SNAPSHOT_PAGE_SIZE);
        written += page.written;
        after = page.last;
      } while (after);
      return written;
    },

    engineStats: () => engine.stats(),
    close: () => engine.close(),
  };
}
