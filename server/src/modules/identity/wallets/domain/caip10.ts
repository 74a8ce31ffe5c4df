import { base58, bech32 } from '@scure/base';
import { getAddress, isAddress } from 'viem';

/** The chain families a wallet can be linked from. */
export const NAMESPACES = ['eip155', 'solana', 'cosmos'] as const;
export type Namespace = (typeof NAMESPACES)[number];

/** A CAIP-10 account id split into its parts, the address in its canonical spelling. */
export interface Account {
  readonly namespace: Namespace;
  readonly reference: string;
  readonly address: string;
}

export type Parsed<T> =
  | { ok: true; value: T }
  | { ok: false; detail: string; field?: 'namespace' | 'reference' | 'address' };

/** Longest CAIP-10 id: namespace (8) + reference (32) + address (128) + two colons. */
export const CAIP10_MAX_LENGTH = 170;

// CAIP-2 references per namespace: an EVM chain id in decimal; the first 32 base58 characters of
// a Solana cluster's genesis hash; a Cosmos chain id (`cosmoshub-4`).
const REFERENCE: Record<Namespace, RegExp> = {
  eip155: /^[1-9][0-9]{0,31}$/,
  solana: /^[1-9A-HJ-NP-Za-km-z]{32}$/,
  cosmos: /^[-a-zA-Z0-9]{1,32}$/,
};

export const formatAccount = (account: Account) =>
  `${account.namespace}:${account.reference}:${account.address}`;

/** Decodes a bech32 Cosmos address: its human-readable prefix and its 20- or 32-byte payload. */
export function decodeCosmosAddress(address: string): { prefix: string; bytes: Uint8Array } | undefined {
  try {
    const decoded = bech32.decode(address as `${string}1${string}`, 90);
    const bytes = bech32.fromWords(decoded.words);
    return bytes.length === 20 || bytes.length === 32
      ? { prefix: decoded.prefix, bytes: Uint8Array.from(bytes) }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Decodes a Solana address: the 32-byte Ed25519 public key it is. */
export function decodeSolanaAddress(address: string): Uint8Array | undefined {
  try {
    const bytes = base58.decode(address);
    return bytes.length === 32 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks an address for its namespace and returns its canonical spelling: EIP-55 checksummed for
 * EVM, lower-case bech32 for Cosmos, base58 as it is for Solana.
 */
export function canonicalAddress(namespace: Namespace, address: string): Parsed<string> {
  switch (namespace) {
    case 'eip155':
      return isAddress(address, { strict: false })
        ? { ok: true, value: getAddress(address) }
        : { ok: false, detail: 'an EVM address is 0x and 40 hex characters' };
    case 'solana':
      return decodeSolanaAddress(address)
        ? { ok: true, value: address }
        : { ok: false, detail: 'a Solana address is a base58-encoded 32-byte public key' };
    case 'cosmos':
      // bech32 is case-insensitive but must not mix cases; the canonical form is lower case.
      return decodeCosmosAddress(address)
        ? { ok: true, value: address.toLowerCase() }
        : { ok: false, detail: 'a Cosmos address is bech32 (cosmos1…) of a 20- or 32-byte payload' };
  }
}

export function checkReference(namespace: Namespace, reference: string): Parsed<string> {
  return REFERENCE[namespace].test(reference)
    ? { ok: true, value: reference }
    : {
        ok: false,
        detail: {
          eip155: 'an eip155 reference is a decimal chain id, e.g. 1',
          solana:
            'a solana reference is the 32-character genesis hash prefix, e.g. 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp',
          cosmos: 'a cosmos reference is a chain id, e.g. cosmoshub-4',
        }[namespace],
      };
}

export function makeAccount(namespace: Namespace, reference: string, address: string): Parsed<Account> {
  const checkedReference = checkReference(namespace, reference);
  if (!checkedReference.ok) return { ...checkedReference, field: 'reference' };
  const canonical = canonicalAddress(namespace, address);
  if (!canonical.ok) return { ...canonical, field: 'address' };
  return { ok: true, value: { namespace, reference, address: canonical.value } };
}

/** Parses `namespace:reference:address` (CAIP-10) of a namespace Keel links. */
export function parseAccount(caip10: string): Parsed<Account> {
  if (caip10.length > CAIP10_MAX_LENGTH) return { ok: false, detail: 'too long for a CAIP-10 account id' };
  const parts = caip10.split(':');
  if (parts.length !== 3) return { ok: false, detail: 'a CAIP-10 account id is namespace:reference:address' };
  const [namespace, reference, address] = parts as [string, string, string];
  if (!(NAMESPACES as readonly string[]).includes(namespace)) {
    return { ok: false, detail: `the namespace must be one of ${NAMESPACES.join(', ')}` };
  }
  return makeAccount(namespace as Namespace, reference, address);
}

/** How the wallet proved control, which decides whether one key stands behind it on every chain. */
export type WalletKind = 'eoa' | 'contract' | 'ed25519' | 'secp256k1';

/**
 * The key behind an account, the same on every chain of its namespace: an EOA's address on every
 * EVM chain, a Solana public key on every cluster, a Cosmos key's 20-byte hash under every bech32
 * prefix. A smart-contract account has none: its code and owners are per chain. Two links with the
 * same controller in one org are the same wallet, so it belongs to one human.
 */
export function controllerOf(account: Account, kind: WalletKind): string | null {
  switch (kind) {
    case 'contract':
      return null;
    case 'eoa':
      return account.address.toLowerCase();
    case 'ed25519':
      return account.address;
    case 'secp256k1': {
      const decoded = decodeCosmosAddress(account.address);
      return decoded ? Buffer.from(decoded.bytes).toString('hex') : null;
    }
  }
}

/**
 * The controller an account would have if it were key-controlled, for looking up a link made on
 * another chain of the namespace. (A contract link is only ever found by its exact CAIP-10 id.)
 */
export function possibleController(account: Account): string | null {
  const kind: Record<Namespace, WalletKind> = { eip155: 'eoa', solana: 'ed25519', cosmos: 'secp256k1' };
  return controllerOf(account, kind[account.namespace]);
}
