import { defineErrors, type ErrorCodesOf } from '../../../infra/http/errors.ts';

/**
 * Wallets linked to subjects (docs/identity.md#wallets). WALLET_LINKED_TO_OTHER_SUBJECT carries
 * `subjectId` and `accountId`, the link that holds the wallet.
 */
export const IDENTITY_WALLET_ERRORS = defineErrors('identity-wallets', {
  WALLET_CHALLENGE_INVALID: {
    status: 422,
    title: 'The wallet challenge is unknown, expired or was already used',
  },
  WALLET_PROOF_INVALID: { status: 422, title: 'The signature does not prove control of the wallet' },
  WALLET_LINKED_TO_OTHER_SUBJECT: {
    status: 409,
    title: 'The wallet is linked to another subject in this org',
  },
  WALLET_NOT_FOUND: { status: 404, title: 'No such wallet is linked to the subject' },
  TOO_MANY_WALLETS: { status: 422, title: 'The subject has as many wallets as it may link' },
});

declare module '../../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof IDENTITY_WALLET_ERRORS> {}
}
