import { createHash } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1';
import { ripemd160 } from '@noble/hashes/legacy';
import { bech32 } from '@scure/base';
import { decodeCosmosAddress } from './caip10.ts';

/**
 * The ADR-036 sign doc Keplr's `signArbitrary(chainId, signer, data)` signs: an amino StdSignDoc
 * with an empty chain id, zero account number, sequence and fee, and one `sign/MsgSignData`
 * message carrying the data in base64.
 */
export function adr036SignDoc(signer: string, data: Uint8Array) {
  return {
    chain_id: '',
    account_number: '0',
    sequence: '0',
    fee: { gas: '0', amount: [] as never[] },
    msgs: [{ type: 'sign/MsgSignData', value: { signer, data: Buffer.from(data).toString('base64') } }],
    memo: '',
  };
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/**
 * The amino JSON bytes that are signed: keys sorted at every level, no whitespace, and `&`, `<`,
 * `>` escaped as \u0026, \u003c, \u003e (as Go's encoding/json and cosmjs's serializeSignDoc do).
 */
export function serializeSignDoc(doc: unknown): Uint8Array {
  const json = JSON.stringify(sortKeys(doc))
    .replaceAll('&', '\\u0026')
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e');
  return new TextEncoder().encode(json);
}

/** The Cosmos address of a compressed secp256k1 public key: bech32(prefix, ripemd160(sha256(key))). */
export function cosmosAddressOf(publicKey: Uint8Array, prefix: string): string {
  const hash = ripemd160(createHash('sha256').update(publicKey).digest());
  return bech32.encode(prefix, bech32.toWords(hash));
}

export type Adr036Check = { ok: true } | { ok: false; detail: string };

/**
 * Verifies an ADR-036 signature of `message` by `signer`: the 64-byte (r‖s, low-S) secp256k1
 * signature over sha256 of the amino JSON sign doc, by the 33-byte compressed `publicKey`, and the
 * address derived from that key under the signer's prefix equals the signer.
 */
export function verifyAdr036(options: {
  signer: string;
  message: string;
  signature: Uint8Array;
  publicKey: Uint8Array;
}): Adr036Check {
  const { signer, signature, publicKey } = options;
  const decoded = decodeCosmosAddress(signer);
  if (!decoded) return { ok: false, detail: 'the signer is not a bech32 address' };
  if (publicKey.length !== 33)
    return { ok: false, detail: 'publicKey must be a 33-byte compressed secp256k1 key' };
  if (signature.length !== 64) return { ok: false, detail: 'the signature must be 64 bytes (r and s)' };
  if (cosmosAddressOf(publicKey, decoded.prefix) !== signer) {
    return { ok: false, detail: 'the public key is not the key of this address' };
  }
  const signBytes = serializeSignDoc(adr036SignDoc(signer, new TextEncoder().encode(options.message)));
  const digest = createHash('sha256').update(signBytes).digest();
  let valid: boolean;
  try {
    valid = secp256k1.verify(signature, digest, publicKey, { lowS: true });
  } catch {
    valid = false;
  }
  return valid
    ? { ok: true }
    : { ok: false, detail: 'the signature does not match the public key and message' };
}
