import { defineIdPrefixes } from '../../../infra/ids.ts';

/** Attestations' ids (kept as stored and handed out, ARCHITECTURE.md "Ids"). */
export const ATTESTATION_IDS = defineIdPrefixes('identity-attestations', [
  // An on-chain attestation of a verdict.
  'att',
  // An attestation transaction: one transaction sent for an attestation (attest or revoke).
  'atx',
]);
