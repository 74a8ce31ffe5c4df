import { createPublicKey, verify } from 'node:crypto';
import { decodeSolanaAddress } from './caip10.ts';

// An Ed25519 public key in DER SubjectPublicKeyInfo form is this fixed prefix, then the 32 bytes.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Verifies a Sign-In With Solana signature: Ed25519 (64 bytes) over the UTF-8 message, by the
 * public key that the base58 address is.
 */
export function verifySolanaSignature(address: string, message: string, signature: Uint8Array): boolean {
  const publicKey = decodeSolanaAddress(address);
  if (!publicKey || signature.length !== 64) return false;
  try {
    const key = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
    return verify(null, Buffer.from(message, 'utf8'), key, signature);
  } catch {
    return false;
  }
}
