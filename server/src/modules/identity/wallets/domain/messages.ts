import type { Address } from 'viem';
import { createSiweMessage } from 'viem/siwe';
import type { Account } from './caip10.ts';

/** What a challenge message says besides the account: who asks, for what, and until when. */
export interface ChallengeFields {
  /** The host (and port) of the site the wallet user is on: wallets warn when it differs. */
  readonly domain: string;
  readonly uri: string;
  readonly statement: string;
  readonly nonce: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** The challenge id, so a support request can name the exact message. */
  readonly requestId: string;
}

export const DEFAULT_STATEMENT =
  'Link this wallet to your verified identity. This costs nothing and sends no transaction.';

/**
 * Solana cluster names by genesis-hash reference: Sign-In With Solana names the cluster
 * (`Chain ID: mainnet`), CAIP-2 names its genesis hash.
 */
export const SOLANA_CLUSTERS: Readonly<Record<string, string>> = {
  '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp': 'mainnet',
  EtWTRABZaYq6iMfeYKouRu166VU2xqa1: 'devnet',
  '4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z': 'testnet',
};

/**
 * The text a wallet signs to link `account`:
 * - eip155: an EIP-4361 (SIWE) message, built by viem;
 * - solana: a Sign-In With Solana message, the same layout with "your Solana account";
 * - cosmos: the same layout (CAIP-122) with "your Cosmos account", signed as ADR-036 data.
 *
 * Keel builds the message and keeps it with the challenge, so verification checks the signature
 * over exactly these bytes and never parses what the client sends back.
 */
export function challengeMessage(account: Account, fields: ChallengeFields): string {
  if (account.namespace === 'eip155') {
    return createSiweMessage({
      domain: fields.domain,
      address: account.address as Address,
      statement: fields.statement,
      uri: fields.uri,
      version: '1',
      chainId: Number(account.reference),
      nonce: fields.nonce,
      issuedAt: fields.issuedAt,
      expirationTime: fields.expiresAt,
      requestId: fields.requestId,
    });
  }
  const blockchain = account.namespace === 'solana' ? 'Solana' : 'Cosmos';
  const chainId =
    account.namespace === 'solana'
      ? (SOLANA_CLUSTERS[account.reference] ?? account.reference)
      : account.reference;
  return [
    `${fields.domain} wants you to sign in with your ${blockchain} account:`,
    account.address,
    '',
    fields.statement,
    '',
    `URI: ${fields.uri}`,
    'Version: 1',
    `Chain ID: ${chainId}`,
    `Nonce: ${fields.nonce}`,
    `Issued At: ${fields.issuedAt.toISOString()}`,
    `Expiration Time: ${fields.expiresAt.toISOString()}`,
    `Request ID: ${fields.requestId}`,
  ].join('\n');
}
