import { type Static, type TSchema, Type } from 'typebox';
import { MAX_BATCH_TRANSFERS } from './engine.ts';

/** Largest page of any ledger list. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 50;
/** Most transfers a bulk request carries: one full batch. */
export const MAX_BULK_TRANSFERS = MAX_BATCH_TRANSFERS;
/** Most transfers in one atomic transaction. */
export const MAX_TRANSACTION_TRANSFERS = 1_000;
/** Largest metadata object, as JSON, on an account or a transfer. */
export const MAX_METADATA_BYTES = 4_096;
/** Largest body of a bulk or transaction request: 8,190 transfers with room for their metadata. */
export const MAX_BULK_BODY_BYTES = 16 * 1024 * 1024;
/** Longest pending timeout: a hold lasts at most 30 days. */
export const MAX_PENDING_TIMEOUT_SECONDS = 30 * 24 * 60 * 60;
/** Widest asset scale: 36 decimal places is more than any token uses (ETH uses 18). */
export const MAX_ASSET_SCALE = 36;

const TYPEID_SUFFIX = '[0-7][0-9a-hjkmnp-tv-z]{25}';

export const AccountId = Type.String({
  pattern: `^acc_${TYPEID_SUFFIX}$`,
  description: 'Account id.',
  examples: ['acc_01jd7x8m3q9f2k5v6w7y8z9a0b'],
});
export const TransferId = Type.String({
  pattern: `^trf_${TYPEID_SUFFIX}$`,
  description:
    'Transfer id. Send your own (a TypeID with prefix `trf`) to make a retry safe: a transfer is written once per id.',
  examples: ['trf_01jd7x9b2c3d4e5f6g7h8j9k0m'],
});
export const TransactionId = Type.String({
  pattern: `^txn_${TYPEID_SUFFIX}$`,
  description: 'Transaction id: the transfers written together.',
  examples: ['txn_01jd7xa0b1c2d3e4f5g6h7j8k9'],
});
export const AssetCode = Type.String({
  pattern: '^[A-Z][A-Z0-9._-]{0,15}$',
  description: 'Asset code: upper case, 1-16 characters.',
  examples: ['USD', 'ETH', 'USDC'],
});
/** An amount in minor units, as a string: JSON numbers cannot carry uint256 exactly. */
export const Amount = Type.String({
  pattern: '^[0-9]{1,80}$',
  description: 'An integer amount of minor units of the asset, as a string.',
  examples: ['1050'],
});
export const PositiveAmount = Type.String({
  pattern: '^[1-9][0-9]{0,77}$',
  description: 'A positive integer amount of minor units of the asset, as a string (at most 2^256-1).',
  examples: ['1050'],
});
const Code = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.:-]+$',
  description: 'Your classification: what kind of account or transfer this is.',
  examples: ['customer_wallet'],
});
const Reference = Type.String({
  minLength: 1,
  maxLength: 255,
  description: 'Your external reference; unique per org across transfers.',
  examples: ['invoice-2026-0042'],
});
const Metadata = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
  maxProperties: 50,
  description: `Free-form key-value data, at most ${MAX_METADATA_BYTES} bytes as JSON.`,
  examples: [{ orderId: 'ord_123' }],
});
const Timestamp = Type.String({ format: 'date-time', examples: ['2026-11-22T10:00:00.000Z'] });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const positiveAmount = (description: string) =>
  Type.String({ pattern: '^[1-9][0-9]{0,77}$', description, examples: ['1050'] });
const transferId = (description: string) =>
  Type.String({
    pattern: `^trf_${TYPEID_SUFFIX}$`,
    description,
    examples: ['trf_01jd7x9b2c3d4e5f6g7h8j9k0m'],
  });

// ---------------------------------------------------------------------------------------------
// Assets

export const CreateAssetBody = Type.Object(
  {
    code: AssetCode,
    scale: Type.Integer({
      minimum: 0,
      maximum: MAX_ASSET_SCALE,
      description: 'Decimal places of the minor unit: 2 for USD (cents), 18 for ETH (wei), 6 for USDC.',
      examples: [2],
    }),
    description: Type.Optional(Type.String({ maxLength: 200, examples: ['US dollar'] })),
  },
  { additionalProperties: false },
);
export type CreateAssetBody = Static<typeof CreateAssetBody>;

export const AssetSchema = Type.Object(
  {
    code: AssetCode,
    scale: Type.Integer({ examples: [2] }),
    description: Nullable(Type.String({ examples: ['US dollar'] })),
    createdAt: Timestamp,
  },
  { $id: 'LedgerAsset', title: 'LedgerAsset', description: 'An asset of the org’s ledger.' },
);

export const AssetPage = Type.Object({
  data: Type.Array(AssetSchema),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null at the end.' })),
});

// ---------------------------------------------------------------------------------------------
// Accounts and balances

export const CreateAccountBody = Type.Object(
  {
    id: Type.Optional(AccountId),
    asset: AssetCode,
    name: Type.String({ minLength: 1, maxLength: 200, examples: ['Alice’s wallet'] }),
    code: Type.Optional(Code),
    metadata: Type.Optional(Metadata),
    debitsMustNotExceedCredits: Type.Optional(
      Type.Boolean({
        description:
          'The account can never owe: a transfer that would make its debits (posted and pending) exceed its posted credits fails with INSUFFICIENT_FUNDS. Use it for customer balances.',
        default: false,
      }),
    ),
    creditsMustNotExceedDebits: Type.Optional(
      Type.Boolean({
        description: 'The mirror image, for debit-normal accounts. At most one of the two flags may be set.',
        default: false,
      }),
    ),
    overdraftLimit: Type.Optional(
      positiveAmount('How far past its limit flag the account may go, in minor units.'),
    ),
  },
  { additionalProperties: false },
);
export type CreateAccountBody = Static<typeof CreateAccountBody>;

const balanceProperties = {
  debitsPosted: Amount,
  creditsPosted: Amount,
  debitsPending: Amount,
  creditsPending: Amount,
  posted: Type.String({
    description:
      'Net posted balance on the account’s normal side (credits − debits; debits − credits for accounts with creditsMustNotExceedDebits). May be negative.',
    examples: ['1050'],
  }),
  available: Type.String({
    description:
      'What the account can spend: the posted balance less its pending holds. Negative while an overdraft is used.',
    examples: ['950'],
  }),
};

const accountProperties = {
  id: AccountId,
  asset: AssetCode,
  name: Type.String({ examples: ['Alice’s wallet'] }),
  code: Nullable(Code),
  metadata: Nullable(Metadata),
  debitsMustNotExceedCredits: Type.Boolean(),
  creditsMustNotExceedDebits: Type.Boolean(),
  overdraftLimit: Nullable(Amount),
  balance: Type.Object(balanceProperties),
  createdAt: Timestamp,
};

export const AccountSchema = Type.Object(accountProperties, {
  $id: 'LedgerAccount',
  title: 'LedgerAccount',
  description: 'An account of one asset, with its current balances.',
});
/** The `account.created` event payload: the account, without a schema id of its own. */
export const AccountPayload = Type.Object(accountProperties);

export const AccountPage = Type.Object({
  data: Type.Array(AccountSchema),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null at the end.' })),
});

export const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
  cursor: Type.Optional(
    Type.String({ maxLength: 200, description: 'The `nextCursor` of the previous page.' }),
  ),
});

export const ListAccountsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
  cursor: Type.Optional(
    Type.String({ maxLength: 200, description: 'The `nextCursor` of the previous page.' }),
  ),
  asset: Type.Optional(AssetCode),
  code: Type.Optional(Code),
});

export const BalanceQuery = Type.Object({
  at: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'The balance as it was at this instant. Absent: the balance now.',
      examples: ['2026-11-01T00:00:00Z'],
    }),
  ),
});

export const AccountBalanceSchema = Type.Object(
  {
    accountId: AccountId,
    asset: AssetCode,
    at: Nullable(Timestamp),
    ...balanceProperties,
  },
  { $id: 'LedgerAccountBalance', title: 'LedgerAccountBalance' },
);

// ---------------------------------------------------------------------------------------------
// Transfers

export const TransferType = Type.Union(
  [
    Type.Literal('posted'),
    Type.Literal('pending'),
    Type.Literal('post'),
    Type.Literal('void'),
    Type.Literal('reversal'),
  ],
  {
    description:
      '`posted` moves funds at once. `pending` places a hold (two-phase), settled later by a `post` (in full or in part) or a `void`, or released when its timeout passes. `reversal` moves a posted amount back.',
    default: 'posted',
  },
);

export const TransferRequestSchema = Type.Object(
  {
    id: Type.Optional(TransferId),
    type: Type.Optional(TransferType),
    debitAccountId: Type.Optional(AccountId),
    creditAccountId: Type.Optional(AccountId),
    asset: Type.Optional(AssetCode),
    amount: Type.Optional(PositiveAmount),
    pendingId: Type.Optional(transferId('For `post` and `void`: the pending transfer to settle.')),
    reversesId: Type.Optional(transferId('For `reversal`: the transfer to reverse.')),
    timeoutSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_PENDING_TIMEOUT_SECONDS,
        description: 'For `pending`: the hold is released automatically after this long.',
        examples: [3600],
      }),
    ),
    code: Type.Optional(Code),
    reference: Type.Optional(Reference),
    metadata: Type.Optional(Metadata),
  },
  {
    additionalProperties: false,
    description:
      '`posted` and `pending` need debitAccountId, creditAccountId, asset and amount. `post` needs pendingId (amount defaults to the full hold). `void` needs pendingId. `reversal` needs reversesId (amount defaults to what is left to reverse).',
    examples: [
      {
        id: 'trf_01jd7x9b2c3d4e5f6g7h8j9k0m',
        debitAccountId: 'acc_01jd7x8m3q9f2k5v6w7y8z9a0b',
        creditAccountId: 'acc_01jd7x8n4r0g3m6w7x8y9z0a1c',
        asset: 'USD',
        amount: '1050',
        reference: 'invoice-2026-0042',
      },
    ],
  },
);

const transferProperties = {
  id: TransferId,
  type: Type.Union([
    Type.Literal('posted'),
    Type.Literal('pending'),
    Type.Literal('post'),
    Type.Literal('void'),
    Type.Literal('expire'),
    Type.Literal('reversal'),
  ]),
  debitAccountId: AccountId,
  creditAccountId: AccountId,
  asset: AssetCode,
  amount: Type.String({
    pattern: '^[0-9]{1,80}$',
    description: 'Minor units moved; for `void` and `expire`, the amount released from pending.',
    examples: ['1050'],
  }),
  pendingId: Nullable(TransferId),
  reversesId: Nullable(TransferId),
  transactionId: Nullable(TransactionId),
  timeoutAt: Nullable(Timestamp),
  status: Type.Optional(
    Type.Union(
      [Type.Literal('pending'), Type.Literal('posted'), Type.Literal('voided'), Type.Literal('expired')],
      { description: 'For pending transfers: whether the hold is still open, and how it was settled.' },
    ),
  ),
  code: Nullable(Code),
  reference: Nullable(Reference),
  metadata: Nullable(Metadata),
  createdAt: Timestamp,
};

export const TransferSchema = Type.Object(transferProperties, {
  $id: 'LedgerTransfer',
  title: 'LedgerTransfer',
  description:
    'One immutable double entry: `amount` leaves the debit account and reaches the credit account.',
});
/** The transfer event payloads: the transfer, without a schema id of its own. */
export const TransferPayload = Type.Object(transferProperties);
export type TransferJson = Static<typeof TransferPayload>;

export const TransferPage = Type.Object({
  data: Type.Array(TransferSchema),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null at the end.' })),
});

const FailureSchema = Type.Object(
  {
    code: Type.String({ description: 'A code from the error catalogue.', examples: ['INSUFFICIENT_FUNDS'] }),
    detail: Type.String({ examples: ['Account acc_… has 950 available, less than 1050'] }),
  },
  { additionalProperties: Type.String() },
);

export const BulkTransfersBody = Type.Object(
  {
    transfers: Type.Array(TransferRequestSchema, {
      minItems: 1,
      maxItems: MAX_BULK_TRANSFERS,
      description: `Up to ${MAX_BULK_TRANSFERS} independent transfers: each succeeds or fails on its own, in order.`,
    }),
  },
  { additionalProperties: false },
);

export const BulkTransfersResponse = Type.Object({
  results: Type.Array(
    Type.Object({
      index: Type.Integer({ description: 'Position of the transfer in the request.', examples: [0] }),
      status: Type.Union([Type.Literal('created'), Type.Literal('exists'), Type.Literal('failed')], {
        description: '`exists`: a transfer with this id was already written with the same fields.',
      }),
      transfer: Type.Optional(TransferSchema),
      error: Type.Optional(FailureSchema),
    }),
  ),
});

export const TransactionBody = Type.Object(
  {
    id: Type.Optional(TransactionId),
    transfers: Type.Array(TransferRequestSchema, {
      minItems: 1,
      maxItems: MAX_TRANSACTION_TRANSFERS,
      description: 'Transfers that commit together or not at all, applied in order.',
    }),
  },
  { additionalProperties: false },
);

export const TransactionSchema = Type.Object(
  {
    id: TransactionId,
    transfers: Type.Array(TransferSchema),
  },
  { $id: 'LedgerTransaction', title: 'LedgerTransaction' },
);

// ---------------------------------------------------------------------------------------------
// Reconciliation

const BalancesFour = Type.Object({
  debitsPosted: Amount,
  creditsPosted: Amount,
  debitsPending: Amount,
  creditsPending: Amount,
});

export const ReconciliationSchema = Type.Object(
  {
    ok: Type.Boolean({ description: 'True when every invariant below holds.' }),
    checkedAt: Timestamp,
    assets: Type.Array(
      Type.Object({
        asset: AssetCode,
        accounts: Type.Integer(),
        postedImbalance: Type.String({ description: 'Σ debits posted − Σ credits posted: must be 0.' }),
        pendingImbalance: Type.String({ description: 'Σ debits pending − Σ credits pending: must be 0.' }),
      }),
    ),
    mismatches: Type.Array(
      Type.Object({ accountId: AccountId, stored: BalancesFour, journal: BalancesFour }),
      {
        description: 'Accounts whose stored balances differ from the sum of their transfers (must be empty).',
      },
    ),
    holds: Type.Object({
      open: Type.Integer({ description: 'Pending transfers whose hold is open.' }),
      total: Amount,
      pendingBalance: Type.String({
        pattern: '^[0-9]{1,80}$',
        description: 'Σ debits pending over accounts: must equal `total`.',
      }),
    }),
  },
  { $id: 'LedgerReconciliation', title: 'LedgerReconciliation' },
);
