import { Type } from 'typebox';
import { SIWE_MESSAGE_MAX_LENGTH } from './domain/siwe.ts';

const DateTime = (description?: string) =>
  Type.String({
    format: 'date-time',
    examples: ['2026-11-21T12:00:00.000Z'],
    ...(description ? { description } : {}),
  });

const EXAMPLE_MESSAGE = [
  'keel.example.com wants you to sign in with your Ethereum account:',
  '0xA0Cf798816D4b9b9866b5330EEa46a18382f251e',
  '',
  'Sign in to Keel.',
  '',
  'URI: https://keel.example.com',
  'Version: 1',
  'Chain ID: 1',
  'Nonce: 4fQ2mVx8Lr0bTq7WcYk3Hn9Z',
  'Issued At: 2026-11-21T12:00:00.000Z',
].join('\n');

export const NonceSchema = Type.Object(
  {
    nonce: Type.String({
      description: 'Put it in the message’s `Nonce:` line. It works once, for 10 minutes.',
      examples: ['4fQ2mVx8Lr0bTq7WcYk3Hn9Z'],
    }),
    issuedAt: DateTime('Use as the message’s `Issued At`.'),
    expiresAt: DateTime(),
    domain: Type.String({
      description:
        'The `domain` this server expects (the host of PUBLIC_URL); allowed browser origins also work.',
      examples: ['keel.example.com'],
    }),
    uri: Type.String({ description: 'A `URI` this server accepts.', examples: ['https://keel.example.com'] }),
  },
  { $id: 'SiweNonce', title: 'SiweNonce' },
);

export const SiweBody = Type.Object({
  message: Type.String({
    minLength: 1,
    maxLength: SIWE_MESSAGE_MAX_LENGTH,
    description: 'The EIP-4361 message, exactly as the wallet signed it.',
    examples: [EXAMPLE_MESSAGE],
  }),
  signature: Type.String({
    pattern: '^0x[0-9a-fA-F]+$',
    maxLength: 20_000,
    description:
      'The wallet’s `personal_sign` signature: 65 bytes for an EOA, whatever an ERC-1271 account returns, or an ERC-6492 wrapped signature for an account not deployed yet.',
    examples: [
      '0x2f6c5b9c4a1c3f6e8b7a0d9e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c1b',
    ],
  }),
});

export const WalletSchema = Type.Object(
  {
    id: Type.String({ examples: ['wal_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    accountId: Type.String({
      description: 'CAIP-10 account id: eip155:<chain id>:<address>. An EOA signs in on any chain.',
      examples: ['eip155:1:0xA0Cf798816D4b9b9866b5330EEa46a18382f251e'],
    }),
    chainId: Type.Integer({ examples: [1] }),
    address: Type.String({
      description: 'EIP-55 checksummed.',
      examples: ['0xA0Cf798816D4b9b9866b5330EEa46a18382f251e'],
    }),
    kind: Type.Union([Type.Literal('eoa'), Type.Literal('contract')], {
      description:
        '`eoa`: a key pair, the same account on every chain. `contract`: a smart-contract account on its chain.',
    }),
    createdAt: DateTime(),
    lastUsedAt: DateTime(),
  },
  { $id: 'Wallet', title: 'Wallet' },
);

export const WalletListSchema = Type.Object(
  { data: Type.Array(WalletSchema) },
  { $id: 'WalletList', title: 'WalletList' },
);

export const WalletParams = Type.Object({
  walletId: Type.String({ maxLength: 100, examples: ['wal_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
});
