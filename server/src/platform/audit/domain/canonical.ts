import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * RFC 8785 (JSON Canonicalization Scheme): object members sorted by UTF-16 code units, numbers in
 * ECMAScript shortest form, no whitespace. Anyone with a JCS implementation in any language
 * reproduces these bytes, which is what lets a third party recompute an entry's hash.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('canonicalJson: the value has no JSON form');
  return text;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
