import { Type } from 'typebox';
import { defineEvent } from '../../../platform/events/index.ts';

const onChain = {
  attestationId: Type.String({ examples: ['att_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
  verificationId: Type.String({ examples: ['vrf_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
  subjectId: Type.String({ examples: ['sbj_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
  chainId: Type.Integer({ examples: [8453] }),
  registryAddress: Type.String({ examples: ['0x5FbDB2315678afecb367f032d93F642f64180aa3'] }),
  attester: Type.String({
    description: 'The org’s signer address.',
    examples: ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8'],
  }),
  commitment: Type.String({ description: 'The salted commitment written on chain.', examples: ['0x9c22…'] }),
  txHash: Type.String({ examples: ['0x3d5f…'] }),
  blockNumber: Type.Integer({ examples: [19000000] }),
};

export const ATTESTATION_CONFIRMED = defineEvent({
  type: 'attestation.confirmed',
  version: 1,
  description: 'An attestation of a verified verdict reached the chain’s confirmation threshold.',
  payload: Type.Object({ ...onChain, confirmations: Type.Integer({ examples: [12] }) }),
});

export const ATTESTATION_REVOKED = defineEvent({
  type: 'attestation.revoked',
  version: 1,
  description: 'An attestation was revoked on chain, and the revocation reached the confirmation threshold.',
  payload: Type.Object({ ...onChain, confirmations: Type.Integer({ examples: [12] }) }),
});

export const ATTESTATION_FAILED = defineEvent({
  type: 'attestation.failed',
  version: 1,
  description: 'An attestation or revocation transaction reverted on chain; it is not retried.',
  payload: Type.Object({
    attestationId: onChain.attestationId,
    verificationId: onChain.verificationId,
    chainId: onChain.chainId,
    kind: Type.Union([Type.Literal('attest'), Type.Literal('revoke')]),
    txHash: onChain.txHash,
    reason: Type.String({ examples: ['the transaction reverted'] }),
  }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const ATTESTATION_EVENTS = [ATTESTATION_CONFIRMED, ATTESTATION_REVOKED, ATTESTATION_FAILED];
