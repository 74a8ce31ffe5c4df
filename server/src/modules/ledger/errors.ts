import { defineErrors, type ErrorCodesOf } from '../../infra/http/errors.ts';

/**
 * The ledger's outcomes (docs/ledger.md). A failed transfer's problem document carries
 * `transferId`, and INSUFFICIENT_FUNDS carries `accountId`, `available` and `requested`.
 */
export const LEDGER_ERRORS = defineErrors('ledger', {
  ASSET_NOT_FOUND: { status: 404, title: 'No such asset' },
  ASSET_EXISTS: { status: 409, title: 'The asset exists with a different scale' },
  ACCOUNT_NOT_FOUND: { status: 404, title: 'No such account' },
  ACCOUNT_ID_CONFLICT: { status: 409, title: 'An account with this id exists with different fields' },
  TRANSFER_NOT_FOUND: { status: 404, title: 'No such transfer' },
  TRANSFER_ID_CONFLICT: { status: 409, title: 'A transfer with this id exists with different fields' },
  REFERENCE_CONFLICT: { status: 409, title: 'The reference is used by another transfer' },
  ASSET_MISMATCH: { status: 422, title: 'The accounts and the transfer are not in the same asset' },
  INSUFFICIENT_FUNDS: { status: 422, title: 'The account has insufficient funds' },
  TRANSFER_NOT_PENDING: { status: 422, title: 'The transfer is not a pending transfer' },
  PENDING_EXPIRED: { status: 409, title: 'The pending transfer expired' },
  ALREADY_POSTED: { status: 409, title: 'The pending transfer was already posted' },
  ALREADY_VOIDED: { status: 409, title: 'The pending transfer was already voided' },
  POST_AMOUNT_EXCEEDS_PENDING: { status: 422, title: 'The amount to post exceeds the pending amount' },
  TRANSFER_NOT_REVERSIBLE: { status: 422, title: 'Only posted transfers can be reversed' },
  ALREADY_REVERSED: { status: 409, title: 'The transfer was already reversed in full' },
  REVERSAL_EXCEEDS_AMOUNT: { status: 422, title: 'The reversal exceeds what is left to reverse' },
});

declare module '../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof LEDGER_ERRORS> {}
}
