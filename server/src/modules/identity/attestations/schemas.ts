import { Type } from 'typebox';
import { MAX_CHAINS_PER_REQUEST } from './service.ts';

const hex = (examples: string[], description?: string) =>
  Type.String({ pattern: '^0x[0-9a-fA-F]*$', examples, ...(description ? { description } : {}) });
const dateTime = (description?: string) =>
  Type.Union([Type.String({ format: 'date-time' }), Type.Null()], description ? { description } : {});

export const VerificationParams = Type.Object(
  { verificationId: Type.String({ maxLength: 64, examples: ['vrf_01jd7x8m3q9f2k5v6w7y8z9a0b'] }) },
  { additionalProperties: false },
);

export const AttestBody = Type.Object(
  {
    chainIds: Type.Array(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, examples: [8453] }), {
      minItems: 1,
      maxItems: MAX_CHAINS_PER_REQUEST,
      uniqueItems: true,
      description:
        'EVM chain ids to attest on. Each needs an RPC URL (CHAIN_RPC_URLS) and a registry deployed with `keel contracts deploy`.',
      examples: [[1, 8453]],
    }),
  },
  { additionalProperties: false },
);

const TxSchema = Type.Object(
  {
    status: Type.Union(
      [
        Type.Literal('queued'),
        Type.Literal('sent'),
        Type.Literal('confirmed'),
        Type.Literal('failed'),
        Type.Literal('cancelled'),
      ],
      {
        description: 'queued: not signed yet; sent: broadcast, being followed; confirmed: at the threshold.',
      },
    ),
    txHash: Type.Union([hex(['0x3d5f…']), Type.Null()]),
    blockNumber: Type.Union([Type.Integer(), Type.Null()], {
      description: 'The block that includes it, while one does.',
    }),
    blockHash: Type.Union([hex(['0x8a1c…']), Type.Null()]),
    confirmations: Type.Integer({ examples: [3] }),
    broadcasts: Type.Integer({
      description: 'Times it was broadcast (more than one after a reorg or a lost broadcast).',
    }),
    signings: Type.Integer({ description: 'Times it was signed (more than one when its nonce was taken).' }),
    reorgs: Type.Integer({ description: 'Times a reorg took it out of the block it was in.' }),
    lastError: Type.Union([Type.String(), Type.Null()], {
      examples: ['insufficient funds for gas * price + value'],
      description: 'Why the last attempt failed: fund the signer if it says so. Retried with back-off.',
    }),
  },
  { title: 'AttestationTransaction' },
);

export const AttestationSchema = Type.Object(
  {
    id: Type.String({ examples: ['att_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    verificationId: Type.String({ examples: ['vrf_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    subjectId: Type.String({ examples: ['sbj_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    chainId: Type.Integer({ examples: [8453] }),
    registryAddress: hex(['0x5FbDB2315678afecb367f032d93F642f64180aa3']),
    attester: hex(['0x70997970C51812dc3A010C7d01b50e0d17dc79C8'], 'The org’s signer address.'),
    commitment: hex(
      ['0x9c22ff5f21f0b81b113e63f7db6da94fedef11b2119b4088b89664fb9a3cb658'],
      'The value on chain.',
    ),
    status: Type.Union(
      [
        Type.Literal('pending'),
        Type.Literal('confirmed'),
        Type.Literal('revoking'),
        Type.Literal('revoked'),
        Type.Literal('expired'),
        Type.Literal('failed'),
      ],
      {
        description:
          'pending → confirmed → revoking → revoked; expired when it lapsed on chain before a revocation.',
      },
    ),
    expiresAt: dateTime('When isValid turns false on chain by itself; null for never.'),
    requiredConfirmations: Type.Integer({ examples: [12], description: 'The chain’s confirmation policy.' }),
    attestTransaction: Type.Union([TxSchema, Type.Null()]),
    revokeTransaction: Type.Union([TxSchema, Type.Null()]),
    opening: Type.Object(
      {
        domain: hex(['0x…'], 'keccak256("keel.identity.attestation.v1")'),
        salt: hex(['0x…'], '32 random bytes, fresh per attestation.'),
        orgId: Type.String(),
        subjectId: Type.String(),
        verificationId: Type.String(),
      },
      {
        description:
          'What the commitment hashes: keccak256(abi.encode(domain, salt, orgId, subjectId, verificationId)). Give it ' +
          'to the human so they can prove the attestation is theirs.',
      },
    ),
    createdAt: Type.String({ format: 'date-time' }),
    confirmedAt: dateTime(),
    revokedAt: dateTime(),
  },
  { $id: 'Attestation', title: 'Attestation' },
);

export const AttestationList = Type.Object({ data: Type.Array(AttestationSchema) });

export const SignerSchema = Type.Object(
  {
    address: hex(
      ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8'],
      'Fund this address on every chain you attest on.',
    ),
    chains: Type.Array(
      Type.Object({
        chainId: Type.Integer({ examples: [8453] }),
        registryAddress: Type.Union([hex(['0x5FbDB2315678afecb367f032d93F642f64180aa3']), Type.Null()], {
          description: 'null until `keel contracts deploy --chain <id>` ran for this chain.',
        }),
        balanceWei: Type.Union(
          [Type.String({ pattern: '^[0-9]+$', examples: ['25000000000000000'] }), Type.Null()],
          {
            description: 'The signer’s balance in wei; null when the chain could not be reached.',
          },
        ),
      }),
    ),
  },
  { $id: 'AttestationSigner', title: 'AttestationSigner' },
);
