import { requireOrgId } from '../../../infra/http/auth.ts';
import type { App } from '../../../infra/http/pipeline.ts';
import { COMMITMENT_DOMAIN } from './domain/commitment.ts';
import { AttestationList, AttestBody, SignerSchema, VerificationParams } from './schemas.ts';
import type { AttestationsService, AttestationView } from './service.ts';
import type { AttestationTxRow } from './store.ts';

const iso = (date: Date | null) => (date ? date.toISOString() : null);

const presentTx = (tx: AttestationTxRow | undefined) =>
  tx
    ? {
        status: tx.status,
        txHash: tx.tx_hash,
        blockNumber: tx.block_number,
        blockHash: tx.block_hash,
        confirmations: tx.confirmations,
        broadcasts: tx.broadcasts,
        signings: tx.signings,
        reorgs: tx.reorgs,
        lastError: tx.last_error,
      }
    : null;

export const presentAttestation = ({
  attestation: row,
  attestTx,
  revokeTx,
  requiredConfirmations,
}: AttestationView) => ({
  id: row.id,
  verificationId: row.verification_id,
  subjectId: row.subject_id,
  chainId: row.chain_id,
  registryAddress: row.registry_address,
  attester: row.attester,
  commitment: row.commitment,
  status: row.status,
  expiresAt: iso(row.expires_at),
  requiredConfirmations,
  attestTransaction: presentTx(attestTx),
  revokeTransaction: presentTx(revokeTx),
  opening: {
    domain: COMMITMENT_DOMAIN,
    salt: row.salt,
    orgId: row.org_id,
    subjectId: row.subject_id,
    verificationId: row.verification_id,
  },
  createdAt: row.created_at.toISOString(),
  confirmedAt: iso(row.confirmed_at),
  revokedAt: iso(row.revoked_at),
});

const common = { tags: ['identity'], security: [{ bearer: [] }] };

export function attestationsRoutes(service: AttestationsService) {
  return async (app: App) => {
    app.get(
      '/v1/identity/attestations/signer',
      {
        config: { permission: 'identity:read' },
        schema: {
          ...common,
          operationId: 'getAttestationSigner',
          summary: 'Get the org’s attestation signer address',
          description:
            'The EVM address that signs the org’s attestations, made on first use. Its private key is sealed under ' +
            'the master key and never returned. Fund it on each chain; balances and registries are listed per configured chain.',
          response: { 200: SignerSchema },
        },
      },
      async (request) => service.signerStatus(requireOrgId(request)),
    );

    app.post(
      '/v1/identity/verifications/:verificationId/attestations',
      {
        config: { permission: 'identity:write' },
        schema: {
          ...common,
          operationId: 'attestVerification',
          summary: 'Attest a verified verdict on chains',
          description:
            'Queues one attestation per chain: a salted commitment (no personal data) written to the chain’s ' +
            'KeelAttestationRegistry by the org’s signer. Answers 202; each attestation becomes `confirmed` at the ' +
            'chain’s confirmation threshold, with an `attestation.confirmed` event. A chain already attested keeps its attestation.',
          params: VerificationParams,
          body: AttestBody,
          response: { 202: AttestationList },
        },
      },
      async (request, reply) => {
        const views = await service.attest(
          requireOrgId(request),
          request.params.verificationId,
          request.body.chainIds,
        );
        return reply.code(202).send({ data: views.map(presentAttestation) });
      },
    );

    app.get(
      '/v1/identity/verifications/:verificationId/attestations',
      {
        config: { permission: 'identity:read' },
        schema: {
          ...common,
          operationId: 'listVerificationAttestations',
          summary: 'List a verification’s attestations and their transactions',
          params: VerificationParams,
          response: { 200: AttestationList },
        },
      },
      async (request) => ({
        data: (await service.listForVerification(requireOrgId(request), request.params.verificationId)).map(
          presentAttestation,
        ),
      }),
    );

    app.delete(
      '/v1/identity/verifications/:verificationId/attestations',
      {
        config: { permission: 'identity:write' },
        schema: {
          ...common,
          operationId: 'revokeVerificationAttestations',
          summary: 'Revoke a verification’s attestations on every chain',
          description:
            'Queues a revoke transaction wherever the verification is attested (after its attestation is confirmed). ' +
            'Answers 202; each becomes `revoked` at the threshold, with an `attestation.revoked` event.',
          params: VerificationParams,
          response: { 202: AttestationList },
        },
      },
      async (request, reply) => {
        const views = await service.revoke(requireOrgId(request), request.params.verificationId);
        return reply.code(202).send({ data: views.map(presentAttestation) });
      },
    );
  };
}
