import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson } from './canonical.ts';

/** Names what a signature is over, so a checkpoint signature can never be replayed as anything else. */
export const CHECKPOINT_KIND = 'keel.audit.checkpoint';
export const CHECKPOINT_VERSION = 1;
export const SIGNATURE_ALGORITHM = 'Ed25519';

/** What a checkpoint signs: an org's chain head at one moment, under one key. */
export interface CheckpointStatement {
  readonly kind: typeof CHECKPOINT_KIND;
  readonly version: typeof CHECKPOINT_VERSION;
  readonly orgId: string;
  readonly seq: number;
  readonly hash: string;
  readonly createdAt: string;
  readonly keyId: string;
}

export function checkpointStatement(fields: {
  orgId: string;
  seq: number;
  hash: string;
  createdAt: Date;
  keyId: string;
}): CheckpointStatement {
  return {
    kind: CHECKPOINT_KIND,
    version: CHECKPOINT_VERSION,
    orgId: fields.orgId,
    seq: fields.seq,
    hash: fields.hash,
    createdAt: fields.createdAt.toISOString(),
    keyId: fields.keyId,
  };
}

/** The signed bytes: the RFC 8785 canonical JSON of the statement, UTF-8. */
export function checkpointMessage(statement: CheckpointStatement): Buffer {
  return Buffer.from(canonicalJson(statement), 'utf8');
}

/** An Ed25519 signature over the statement, base64url. */
export function signCheckpoint(statement: CheckpointStatement, privateKey: KeyObject | string): string {
  return sign(null, checkpointMessage(statement), privateKey).toString('base64url');
}

export function verifyCheckpoint(
  statement: CheckpointStatement,
  signature: string,
  publicKey: KeyObject | string,
): boolean {
  try {
    return verify(null, checkpointMessage(statement), publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

export interface SigningKeyPair {
  /** SPKI PEM. */
  readonly publicKeyPem: string;
  /** PKCS#8 PEM: seal it before it is stored. */
  readonly privateKeyPem: string;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The public key as a JWK (RFC 8037: kty OKP, crv Ed25519) and its SHA-256 fingerprint (hex, of the raw key). */
export function describePublicKey(publicKeyPem: string): {
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string };
  fingerprint: string;
} {
  const jwk = createPublicKey(publicKeyPem).export({ format: 'jwk' }) as { x: string };
  return {
    jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x },
    fingerprint: createHash('sha256').update(Buffer.from(jwk.x, 'base64url')).digest('hex'),
  };
}
