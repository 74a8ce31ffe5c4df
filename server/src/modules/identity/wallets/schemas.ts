import { Type } from 'typebox';
import { CAIP10_MAX_LENGTH, NAMESPACES } from './domain/caip10.ts';

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;
/** Longest statement a challenge message may carry (EIP-4361: one line, no newline). */
export const MAX_STATEMENT_LENGTH = 300;
/** Longest signature accepted: ERC-6492 wraps a factory call, so it is larger than 65 bytes. */
export const MAX_SIGNATURE_LENGTH = 8_192;

const subjectId = Type.String({
  maxLength: 64,
  description: 'The subject (human) id.',
  examples: ['sbj_01jd7x8m3q9f2k5v6w7y8z9a0b'],
});
const accountId = Type.String({
  maxLength: CAIP10_MAX_LENGTH,
  description: 'CAIP-10 account id: namespace:reference:address.',
  examples: ['eip155:1:0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B'],
});
const namespace = Type.Union(
  [Type.Literal(NAMESPACES[0]), Type.Literal(NAMESPACES[1]), Type.Literal(NAMESPACES[2])],
  { description: 'The chain family: eip155 (EVM), solana or cosmos.', examples: ['eip155'] },
);
const walletKind = Type.Union(
  [Type.Literal('eoa'), Type.Literal('contract'), Type.Literal('ed25519'), Type.Literal('secp256k1')],
  {
    description:
      'How control was proved: eoa (ECDSA recovery), contract (ERC-1271/ERC-6492 on its chain), ed25519 (Solana), secp256k1 (Cosmos ADR-036).',
  },
);

export const SubjectParams = Type.Object({ subjectId }, { additionalProperties: false });
export const WalletParams = Type.Object(
  {
    subjectId,
    accountId: Type.String({
      ...accountId,
      description: 'CAIP-10 account id (URL-encode it or not: `:` is allowed in a path).',
    }),
  },
  { additionalProperties: false },
);

export const ChallengeBody = Type.Object(
  {
    namespace,
    reference: Type.String({
      minLength: 1,
      maxLength: 32,
      description:
        'CAIP-2 reference: the EVM chain id in decimal, the Solana genesis hash prefix, or the Cosmos chain id.',
      examples: ['1', '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp', 'cosmoshub-4'],
    }),
    address: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'The account address: 0x… (EVM), base58 (Solana) or bech32 (Cosmos).',
      examples: ['0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B'],
    }),
    domain: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$',
        description:
          'Host (and port) of the site the user signs on; wallets warn when it is not the page’s. Default: the host of PUBLIC_URL.',
        examples: ['app.example.com'],
      }),
    ),
    uri: Type.Optional(
      Type.String({
        format: 'uri',
        maxLength: 2048,
        description: 'The URI the message names. Default: PUBLIC_URL.',
        examples: ['https://app.example.com/link-wallet'],
      }),
    ),
    statement: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_STATEMENT_LENGTH,
        pattern: '^[^\\n\\r]*$',
        description: 'One line shown to the user in the message.',
        examples: ['Link this wallet to your Example account.'],
      }),
    ),
  },
  { additionalProperties: false },
);

export const ChallengeSchema = Type.Object(
  {
    id: Type.String({ examples: ['wch_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    subjectId,
    accountId,
    namespace,
    message: Type.String({
      description:
        'The exact text to sign. eip155: personal_sign it (EIP-4361). solana: signMessage of its UTF-8 bytes (SIWS). ' +
        'cosmos: Keplr signArbitrary(chainId, address, message) (ADR-036).',
    }),
    signDoc: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
      description:
        'cosmos only: the ADR-036 amino sign doc the wallet signs, for wallets without signArbitrary.',
    }),
    issuedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'WalletChallenge', title: 'WalletChallenge' },
);

export const LinkBody = Type.Object(
  {
    challengeId: Type.String({ maxLength: 64, examples: ['wch_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    signature: Type.String({
      minLength: 1,
      maxLength: MAX_SIGNATURE_LENGTH,
      description:
        'eip155: 0x hex (65 bytes, or ERC-1271/6492). solana: base58 (64 bytes). cosmos: base64 (64 bytes).',
      examples: ['0x5f0b…1b'],
    }),
    publicKey: Type.Optional(
      Type.String({
        maxLength: 128,
        description:
          'cosmos only: the compressed secp256k1 public key (33 bytes), base64, as Keplr returns it.',
        examples: ['A7Vm3ECBk5kMkvC7J8oU0mYVPK3Qp4fd6B3N2f0rK0zN'],
      }),
    ),
  },
  { additionalProperties: false },
);

export const WalletSchema = Type.Object(
  {
    id: Type.String({ examples: ['wlk_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    subjectId,
    accountId,
    namespace,
    reference: Type.String({ examples: ['1'] }),
    address: Type.String({ examples: ['0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B'] }),
    kind: walletKind,
    linkedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'LinkedWallet', title: 'LinkedWallet' },
);

export const LinkedWalletResponse = Type.Object({
  ...WalletSchema.properties,
  created: Type.Boolean({ description: 'false when the subject already had this wallet linked.' }),
});

export const PageQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE }),
    cursor: Type.Optional(Type.String({ maxLength: 64, description: 'nextCursor of the previous page.' })),
  },
  { additionalProperties: false },
);

export const WalletPage = Type.Object({
  data: Type.Array(WalletSchema),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
