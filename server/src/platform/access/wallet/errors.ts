import { defineErrors, type ErrorCodesOf } from '../../../infra/http/errors.ts';

/** Sign-in with Ethereum (docs/access.md#sign-in-with-ethereum-siwe). */
export const WALLET_SIGN_IN_ERRORS = defineErrors('access-wallet', {
  SIWE_MESSAGE_INVALID: { status: 400, title: 'The sign-in message is not valid' },
  SIWE_NONCE_INVALID: { status: 401, title: 'The nonce is unknown, expired or was already used' },
  WALLET_SIGNATURE_INVALID: { status: 401, title: 'The wallet signature is not valid' },
  WALLET_CHAIN_UNSUPPORTED: { status: 422, title: 'Smart-contract wallets on this chain cannot be checked' },
  CHAIN_UNAVAILABLE: { status: 503, title: 'The chain could not be reached' },
  WALLET_ALREADY_LINKED: { status: 409, title: 'The wallet is linked to another account' },
  LAST_SIGN_IN_METHOD: { status: 409, title: 'This is the account’s last way to sign in' },
});

declare module '../../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof WALLET_SIGN_IN_ERRORS> {}
}
