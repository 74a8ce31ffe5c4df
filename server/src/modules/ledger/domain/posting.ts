import {
  type AccountState,
  availableBalance,
  canonicalJson,
  type GroupOutcome,
  type LedgerFailure,
  POSTING_KINDS,
  RESOLVING_KINDS,
  type TransferCommand,
  type TransferGroup,
  type TransferKind,
  type TransferOutcome,
  type TransferRecord,
  withinLimits,
} from './model.ts';

/**
 * The posting rules: a pure function from the locked state of a batch's accounts (and the
 * transfers they refer to) plus the batch's transfer groups to the outcome of every group and
 * the rows to write. No I/O: the engine loads the state under row locks, calls this, and
 * writes the result in the same database transaction. A failing transfer is a value, so one bad
 * transfer never aborts the batch it shares with others.
 */

/** What the engine loaded, under the locks of every account the batch touches. */
export interface LedgerView {
  readonly accounts: Map<string, AccountState>;
  /** Existing transfers: those whose ids the batch uses, and those it posts, voids or reverses. */
  readonly transfers: Map<string, TransferRecord>;
  /** Open holds among the pending transfers the batch refers to: id → expiry (null: none). */
  readonly openHolds: Map<string, Date | null>;
  /** For pending transfers the batch refers to that are no longer open: how they were resolved. */
  readonly resolutions: Map<string, TransferKind>;
  /** References the batch uses that an existing transfer already carries: reference → its id. */
  readonly references: Map<string, string>;
  /** For transfers the batch reverses: the amount reversed so far. */
  readonly reversed: Map<string, bigint>;
}

export interface BatchWrites {
  readonly transfers: TransferRecord[];
  readonly holdsOpened: { readonly transferId: string; readonly expiresAt: Date | null }[];
  readonly holdsClosed: string[];
  /** The final state of every account whose balances changed. */
  readonly accounts: AccountState[];
}

export interface BatchResult {
  readonly outcomes: GroupOutcome[];
  readonly writes: BatchWrites;
}

/** Copy-on-write changes over a map, kept or dropped as a group commits or fails. */
class Layer<K, V> {
  private readonly changes = new Map<K, V | undefined>();
  constructor(private readonly base: Map<K, V>) {}
  get(key: K): V | undefined {
    return this.changes.has(key) ? this.changes.get(key) : this.base.get(key);
  }
  set(key: K, value: V): void {
    this.changes.set(key, value);
  }
  delete(key: K): void {
    this.changes.set(key, undefined);
  }
  commit(): void {
    for (const [key, value] of this.changes) {
      if (value === undefined) this.base.delete(key);
      else this.base.set(key, value);
    }
    this.changes.clear();
  }
  discard(): void {
    this.changes.clear();
  }
}

const fail = (code: LedgerFailure['code'], detail: string, members?: LedgerFailure['members']) => ({
  ok: false as const,
  error: members ? { code, detail, members } : { code, detail },
});

/** True when a retried command asks for exactly what the stored transfer is. */
export function sameTransfer(command: TransferCommand, stored: TransferRecord): boolean {
  if (command.kind !== stored.kind) return false;
  if (command.code !== stored.code || command.reference !== stored.reference) return false;
  if (canonicalJson(command.metadata) !== canonicalJson(stored.metadata)) return false;
  if (command.amount !== undefined && command.amount !== stored.amount) return false;
  switch (command.kind) {
    case 'posted':
    case 'pending': {
      const timeoutMs = stored.timeoutAt
        ? stored.timeoutAt.getTime() - stored.createdAt.getTime()
        : undefined;
      return (
        command.debitAccountId === stored.debitAccountId &&
        command.creditAccountId === stored.creditAccountId &&
        command.asset === stored.asset &&
        (command.timeoutSeconds === undefined ? undefined : command.timeoutSeconds * 1000) === timeoutMs
      );
    }
    case 'post':
    case 'void':
    case 'expire':
      return command.pendingId === stored.pendingId;
    case 'reversal':
      return command.reversesId === stored.reversesId;
  }
}

/** The accounts a command touches, given the transfers it refers to; undefined when one is unknown. */
export function commandAccounts(
  command: TransferCommand,
  lookup: (id: string) => Pick<TransferRecord, 'debitAccountId' | 'creditAccountId'> | undefined,
): readonly string[] {
  switch (command.kind) {
    case 'posted':
    case 'pending':
      return [command.debitAccountId!, command.creditAccountId!];
    case 'post':
    case 'void':
    case 'expire': {
      const pending = lookup(command.pendingId!);
      return pending ? [pending.debitAccountId, pending.creditAccountId] : [];
    }
    case 'reversal': {
      const original = lookup(command.reversesId!);
      return original ? [original.debitAccountId, original.creditAccountId] : [];
    }
  }
}

export function applyGroups(view: LedgerView, groups: readonly TransferGroup[], now: Date): BatchResult {
  const accounts = new Layer(view.accounts);
  const transfers = new Layer(view.transfers);
  const holds = new Layer(view.openHolds);
  const resolutions = new Layer(view.resolutions);
  const references = new Layer(view.references);
  const reversed = new Layer(view.reversed);
  const layers = [accounts, transfers, holds, resolutions, references, reversed];
  const initialHolds = new Map(view.openHolds);
  const initialAccounts = new Map(view.accounts);
  const written: TransferRecord[] = [];

  const applyOne = (command: TransferCommand, transactionId: string | null): TransferOutcome => {
    const existing = transfers.get(command.id);
    if (existing) {
      return sameTransfer(command, existing)
        ? { ok: true, transfer: existing, created: false }
        : fail(
            'TRANSFER_ID_CONFLICT',
            `Transfer ${command.id} already exists with different fields; use a new id for a new transfer`,
            { transferId: command.id },
          );
    }
    if (command.reference !== null) {
      const holder = references.get(command.reference);
      if (holder !== undefined) {
        return fail('REFERENCE_CONFLICT', `Reference "${command.reference}" is used by transfer ${holder}`, {
          existingTransferId: holder,
        });
      }
    }

    let debitAccountId: string;
    let creditAccountId: string;
    let asset: string;
    let amount: bigint;
    let pendingAmount: bigint | null = null;
    switch (command.kind) {
      case 'posted':
      case 'pending': {
        debitAccountId = command.debitAccountId!;
        creditAccountId = command.creditAccountId!;
        asset = command.asset!;
        amount = command.amount!;
        break;
      }
      case 'reversal': {
        const original = transfers.get(command.reversesId!);
        if (!original) return fail('TRANSFER_NOT_FOUND', `Transfer ${command.reversesId} does not exist`);
        if (!POSTING_KINDS.has(original.kind)) {
          return fail(
            'TRANSFER_NOT_REVERSIBLE',
            `Transfer ${original.id} is a ${original.kind} transfer; only posted amounts can be reversed (void a pending transfer instead)`,
          );
        }
        const remaining = original.amount - (reversed.get(original.id) ?? 0n);
        if (remaining === 0n) {
          return fail('ALREADY_REVERSED', `Transfer ${original.id} is already reversed in full`);
        }
        amount = command.amount ?? remaining;
        if (amount > remaining) {
          return fail(
            'REVERSAL_EXCEEDS_AMOUNT',
            `Transfer ${original.id} has ${remaining} left to reverse, less than ${amount}`,
            { remaining: remaining.toString() },
          );
        }
        debitAccountId = original.creditAccountId;
        creditAccountId = original.debitAccountId;
        asset = original.asset;
        break;
      }
      case 'post':
      case 'void':
      case 'expire': {
        const pending = transfers.get(command.pendingId!);
        if (!pending)
          return fail('TRANSFER_NOT_FOUND', `Pending transfer ${command.pendingId} does not exist`);
        if (pending.kind !== 'pending') {
          return fail(
            'TRANSFER_NOT_PENDING',
            `Transfer ${pending.id} is a ${pending.kind} transfer, not pending`,
          );
        }
        // A hold without expiry is open with the value null; undefined means it is not open.
        if (holds.get(pending.id) === undefined) {
          const resolution = resolutions.get(pending.id);
          if (resolution === 'post')
            return fail('ALREADY_POSTED', `Pending transfer ${pending.id} was posted`);
          if (resolution === 'void')
            return fail('ALREADY_VOIDED', `Pending transfer ${pending.id} was voided`);
          return fail('PENDING_EXPIRED', `Pending transfer ${pending.id} expired and its hold was released`);
        }
        const expired = pending.timeoutAt !== null && pending.timeoutAt.getTime() <= now.getTime();
        if (command.kind === 'expire' && !expired) {
          return fail('CONFLICT', `Pending transfer ${pending.id} has not reached its timeout`);
        }
        if (command.kind !== 'expire' && expired) {
          return fail(
            'PENDING_EXPIRED',
            `Pending transfer ${pending.id} expired at ${pending.timeoutAt!.toISOString()}`,
          );
        }
        pendingAmount = pending.amount;
        amount = command.kind === 'post' ? (command.amount ?? pending.amount) : pending.amount;
        if (amount > pending.amount) {
          return fail(
            'POST_AMOUNT_EXCEEDS_PENDING',
            `Cannot post ${amount}: pending transfer ${pending.id} holds ${pending.amount}`,
            { pendingAmount: pending.amount.toString() },
          );
        }
        debitAccountId = pending.debitAccountId;
        creditAccountId = pending.creditAccountId;
        asset = pending.asset;
        break;
      }
    }

    const debit = accounts.get(debitAccountId);
    if (!debit)
      return fail('ACCOUNT_NOT_FOUND', `Account ${debitAccountId} does not exist`, {
        accountId: debitAccountId,
      });
    const credit = accounts.get(creditAccountId);
    if (!credit) {
      return fail('ACCOUNT_NOT_FOUND', `Account ${creditAccountId} does not exist`, {
        accountId: creditAccountId,
      });
    }
    if (debit.asset !== asset || credit.asset !== asset) {
      return fail(
        'ASSET_MISMATCH',
        `The transfer is in ${asset}; account ${debit.id} holds ${debit.asset} and account ${credit.id} holds ${credit.asset}`,
      );
    }

    const record: TransferRecord = {
      id: command.id,
      kind: command.kind,
      debitAccountId,
      creditAccountId,
      asset,
      amount,
      pendingId: command.pendingId ?? null,
      pendingAmount,
      reversesId: command.reversesId ?? null,
      transactionId,
      timeoutAt:
        command.kind === 'pending' && command.timeoutSeconds !== undefined
          ? new Date(now.getTime() + command.timeoutSeconds * 1000)
          : null,
      code: command.code,
      reference: command.reference,
      metadata: command.metadata,
      createdAt: now,
    };

    const released = pendingAmount ?? 0n;
    const posted = POSTING_KINDS.has(record.kind) ? amount : 0n;
    const pendingDelta = record.kind === 'pending' ? amount : -released;
    const nextDebit: AccountState = {
      ...debit,
      debitsPosted: debit.debitsPosted + posted,
      debitsPending: debit.debitsPending + pendingDelta,
    };
    const nextCredit: AccountState = {
      ...credit,
      creditsPosted: credit.creditsPosted + posted,
      creditsPending: credit.creditsPending + pendingDelta,
    };
    // Only transfers that add to a side can break a limit: post, void and expire release at least
    // as much as they post, so they always succeed, even on an account already past its limit.
    if (!RESOLVING_KINDS.has(record.kind)) {
      if (!withinLimits(nextDebit)) return insufficientFunds(debit, amount);
      if (!withinLimits(nextCredit)) return insufficientFunds(credit, amount);
    }

    accounts.set(debitAccountId, nextDebit);
    accounts.set(creditAccountId, nextCredit);
    transfers.set(record.id, record);
    if (record.reference !== null) references.set(record.reference, record.id);
    if (record.kind === 'pending') holds.set(record.id, record.timeoutAt);
    if (record.pendingId !== null) {
      holds.delete(record.pendingId);
      resolutions.set(record.pendingId, record.kind);
    }
    if (record.reversesId !== null) {
      reversed.set(record.reversesId, (reversed.get(record.reversesId) ?? 0n) + amount);
    }
    return { ok: true, transfer: record, created: true };
  };

  const outcomes: GroupOutcome[] = [];
  for (const group of groups) {
    const created: TransferRecord[] = [];
    const results: { transfer: TransferRecord; created: boolean }[] = [];
    let failure: GroupOutcome | undefined;
    for (const [index, command] of group.transfers.entries()) {
      const outcome = applyOne(command, group.transactionId);
      if (!outcome.ok) {
        failure = { ok: false, index, transferId: command.id, error: outcome.error };
        break;
      }
      results.push(outcome);
      if (outcome.created) created.push(outcome.transfer);
    }
    if (failure) {
      for (const layer of layers) layer.discard();
      outcomes.push(failure);
    } else {
      for (const layer of layers) layer.commit();
      written.push(...created);
      outcomes.push({ ok: true, transfers: results });
    }
  }

  const holdsOpened: BatchWrites['holdsOpened'] = [];
  for (const [transferId, expiresAt] of view.openHolds) {
    if (!initialHolds.has(transferId)) holdsOpened.push({ transferId, expiresAt });
  }
  const holdsClosed = [...initialHolds.keys()].filter((id) => !view.openHolds.has(id));
  const changedAccounts = [...view.accounts.values()].filter(
    (account) => initialAccounts.get(account.id) !== account,
  );
  return { outcomes, writes: { transfers: written, holdsOpened, holdsClosed, accounts: changedAccounts } };
}

function insufficientFunds(account: AccountState, requested: bigint): TransferOutcome {
  const available = availableBalance(account);
  return fail(
    'INSUFFICIENT_FUNDS',
    `Account ${account.id} has ${available} available${account.overdraftLimit ? ` (plus an overdraft of ${account.overdraftLimit})` : ''}, less than ${requested}`,
    {
      accountId: account.id,
      available: available.toString(),
      requested: requested.toString(),
      ...(account.overdraftLimit !== null ? { overdraftLimit: account.overdraftLimit.toString() } : {}),
    },
  );
}
