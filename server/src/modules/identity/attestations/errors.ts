import { defineErrors, type ErrorCodesOf } from '../../../infra/http/errors.ts';

/** On-chain attestations of verdicts (docs/identity.md). */
export const ATTESTATION_ERRORS = defineErrors('identity-attestations', {
  VERDICT_NOT_ATTESTABLE: { status: 422, title: 'Only a current verified verdict can be attested' },
  ATTESTATION_CHAIN_UNAVAILABLE: {
    status: 422,
    title: 'The chain has no RPC URL or no deployed attestation registry',
  },
  ATTESTATION_NOT_FOUND: { status: 404, title: 'The verification has no attestation' },
});

declare module '../../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof ATTESTATION_ERRORS> {}
}
