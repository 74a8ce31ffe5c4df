import type { ErrorCode } from '../../../infra/http/errors.ts';

/**
 * The ledger's data model in memory. Amounts and balances are bigints of minor units: never
 * floating point, and wide enough for uint256 token amounts (ETH has 18 decimals).
 */

/** Largest amount one transfer may move: the largest uint256, the widest token amount on EVM chains. */
export const MAX_AMOUNT = 2n ** 256n - 1n;

/**
 * How a transfer row moves balances:
 * - `posted`, `reversal`: posted += amount on both sides.
 * - `pending`: pending += amount on both sides (a hold).
 * - `post`: pending -= pendingAmount, posted += amount, with amount <= pendingAmount.
 * - `void`, `expire`: pending -= pendingAmount.
 */
export const TRANSFER_KINDS = ['posted', 'reversal', 'pending', 'post', 'void', 'expire'] as const;
export type TransferKind = (typeof TRANSFER_KINDS)[number];

/** Kinds that add to posted balances (and may be reversed). */
export const POSTING_KINDS: ReadonlySet<TransferKind> = new Set(['posted', 'reversal', 'post']);
/** Kinds that resolve a pending transfer. */
export const RESOLVING_KINDS: ReadonlySet<TransferKind> = new Set(['post', 'void', 'expire']);

export type Metadata = Readonly<Record<string, unknown>>;

export interface Balances {
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
  readonly debitsPending: bigint;
  readonly creditsPending: bigint;
}

export interface AccountFlags {
  /** The account may never owe: posted and pending debits stay within posted credits (+ overdraft). */
  readonly debitsMustNotExceedCredits: boolean;
  /** The mirror image, for debit-normal accounts such as a bank's view of a customer's deposit. */
  readonly creditsMustNotExceedDebits: boolean;
  /** How far past the limit above the account may go; null means no overdraft. */
  readonly overdraftLimit: bigint | null;
}

/** An account row as the engine holds it while its row is locked. */
export interface AccountState extends Balances, AccountFlags {
  readonly id: string;
  readonly asset: string;
}

/** A stored transfer. Immutable once written. */
export interface TransferRecord {
  readonly id: string;
  readonly kind: TransferKind;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly asset: string;
  readonly amount: bigint;
  /** For post, void and expire: the pending transfer they resolve. */
  readonly pendingId: string | null;
  /** For post, void and expire: the amount released from pending (the pending transfer's amount). */
  readonly pendingAmount: bigint | null;
  readonly reversesId: string | null;
  readonly transactionId: string | null;
  /** For pending transfers with a timeout: when the hold expires. */
  readonly timeoutAt: Date | null;
  readonly code: string | null;
  readonly reference: string | null;
  readonly metadata: Metadata | null;
  readonly createdAt: Date;
}

/** A validated request to write one transfer; the engine turns it into a TransferRecord. */
export interface TransferCommand {
  readonly id: string;
  readonly kind: TransferKind;
  readonly debitAccountId?: string;
  readonly creditAccountId?: string;
  readonly asset?: string;
  /** Absent on post (post the full pending amount), reversal (reverse what remains) and void. */
  readonly amount?: bigint;
  readonly pendingId?: string;
  readonly reversesId?: string;
  readonly timeoutSeconds?: number;
  readonly code: string | null;
  readonly reference: string | null;
  readonly metadata: Metadata | null;
}

/** Transfers that commit together or not at all: one transfer alone, or a transaction. */
export interface TransferGroup {
  readonly orgId: string;
  readonly transactionId: string | null;
  readonly transfers: readonly TransferCommand[];
}

/** An expected failure: a value, never an exception (see STYLE.md, "three kinds of failure"). */
export interface LedgerFailure {
  readonly code: LedgerErrorCode;
  readonly detail: string;
  /** Extension members of the problem document, e.g. the available balance. */
  readonly members?: Readonly<Record<string, string>>;
}

export type LedgerErrorCode = Extract<
  ErrorCode,
  | 'ACCOUNT_NOT_FOUND'
  | 'ASSET_MISMATCH'
  | 'INSUFFICIENT_FUNDS'
  | 'TRANSFER_NOT_FOUND'
  | 'TRANSFER_NOT_PENDING'
  | 'PENDING_EXPIRED'
  | 'ALREADY_POSTED'
  | 'ALREADY_VOIDED'
  | 'POST_AMOUNT_EXCEEDS_PENDING'
  | 'TRANSFER_NOT_REVERSIBLE'
  | 'ALREADY_REVERSED'
  | 'REVERSAL_EXCEEDS_AMOUNT'
  | 'TRANSFER_ID_CONFLICT'
  | 'REFERENCE_CONFLICT'
  | 'CONFLICT'
>;

export type TransferOutcome =
  | { readonly ok: true; readonly transfer: TransferRecord; readonly created: boolean }
  | { readonly ok: false; readonly error: LedgerFailure };

export type GroupOutcome =
  | {
      readonly ok: true;
      readonly transfers: readonly { readonly transfer: TransferRecord; readonly created: boolean }[];
    }
  | {
      readonly ok: false;
      readonly index: number;
      readonly transferId: string;
      readonly error: LedgerFailure;
    };

/**
 * The account's normal side: debit-normal when its credits may not exceed its debits, credit-
 * normal otherwise (a customer wallet, a revenue account).
 */
export function isDebitNormal(account: AccountFlags): boolean {
  return account.creditsMustNotExceedDebits;
}

/** Net posted balance on the account's normal side. */
export function postedBalance(account: Balances & AccountFlags): bigint {
  return isDebitNormal(account)
    ? account.debitsPosted - account.creditsPosted
    : account.creditsPosted - account.debitsPosted;
}

/**
 * What the account can still spend: the posted balance less the holds against it (pending
 * movements away from its normal side). Pending movements towards it are not counted until
 * posted. Negative when an overdraft is in use.
 */
export function availableBalance(account: Balances & AccountFlags): bigint {
  return isDebitNormal(account)
    ? account.debitsPosted - account.creditsPosted - account.creditsPending
    : account.creditsPosted - account.debitsPosted - account.debitsPending;
}

/** True when the account's balance limit holds. */
export function withinLimits(account: Balances & AccountFlags): boolean {
  const overdraft = account.overdraftLimit ?? 0n;
  if (account.debitsMustNotExceedCredits) {
    return account.debitsPosted + account.debitsPending <= account.creditsPosted + overdraft;
  }
  if (account.creditsMustNotExceedDebits) {
    return account.creditsPosted + account.creditsPending <= account.debitsPosted + overdraft;
  }
  return true;
}

/** Canonical JSON (object keys sorted), so that metadata compares equal whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}
