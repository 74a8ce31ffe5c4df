import { createHash } from 'node:crypto';
import { TypeID } from 'typeid-js';

/**
 * An id derived from a seed: the same seed always gives the same id. Used where a retry must
 * find what the first attempt wrote even when the client sent no id: a transfer sent with an
 * Idempotency-Key, the transfers of a transaction, the expiry of a hold (which every replica's
 * expiry job may attempt). The UUID underneath is version 8 (custom), so it cannot collide with
 * the UUIDv7 of a generated id.
 */
export function derivedId(prefix: string, seed: string): string {
  const bytes = createHash('sha256').update(seed).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return TypeID.fromUUIDBytes(prefix, new Uint8Array(bytes)).toString();
}
