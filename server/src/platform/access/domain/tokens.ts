import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * The secrets Keel hands out: API keys, session tokens, invitation and MFA tokens. All are
 * opaque, base62, stored only as their SHA-256, and carry a prefix saying what they are.
 *
 * API keys look like GitHub's tokens, so that secret scanners can match them and a typo fails
 * before any lookup:
 *
 *   keel_live_<32 random base62 characters><6 base62 characters of CRC32>
 *
 * The CRC32 covers everything before it (prefix included) and is zero-padded to 6 characters.
 * 32 base62 characters carry 190 bits of entropy. Regex: /keel_(live|test)_[0-9A-Za-z]{38}/.
 */
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const API_KEY_ENVIRONMENTS = ['live', 'test'] as const;
export type ApiKeyEnvironment = (typeof API_KEY_ENVIRONMENTS)[number];
export const API_KEY_RANDOM_LENGTH = 32;
export const API_KEY_CHECKSUM_LENGTH = 6;
export const API_KEY_PATTERN = /^keel_(live|test)_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;
/** Session tokens: `keel_sess_` and 40 base62 characters (238 bits). */
export const SESSION_TOKEN_PREFIX = 'keel_sess_';
export const SESSION_TOKEN_PATTERN = /^keel_sess_[0-9A-Za-z]{40}$/;
const OPAQUE_TOKEN_LENGTH = 40;

/** Uniform base62 characters from the CSPRNG (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: bytes at or above it would favour the first characters.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function base62(value: number, width: number): string {
  let out = '';
  let rest = value;
  do {
    out = BASE62[rest % 62] + out;
    rest = Math.floor(rest / 62);
  } while (rest > 0);
  return out.padStart(width, '0');
}

function checksum(body: string): string {
  return base62(crc32(body), API_KEY_CHECKSUM_LENGTH);
}

export function generateApiKey(environment: ApiKeyEnvironment): string {
  const body = `keel_${environment}_${randomBase62(API_KEY_RANDOM_LENGTH)}`;
  return body + checksum(body);
}

export type ParsedApiKey = { ok: true; environment: ApiKeyEnvironment } | { ok: false; reason: string };

/** Checks shape and checksum only: no lookup, so a mistyped key costs nothing. */
export function parseApiKey(candidate: string): ParsedApiKey {
  const match = API_KEY_PATTERN.exec(candidate);
  if (!match) return { ok: false, reason: 'is not a Keel API key (keel_live_… or keel_test_…)' };
  const body = candidate.slice(0, -API_KEY_CHECKSUM_LENGTH);
  if (checksum(body) !== match[3]) return { ok: false, reason: 'has a wrong checksum: it was mistyped' };
  return { ok: true, environment: match[1] as ApiKeyEnvironment };
}

export function looksLikeApiKey(candidate: string): boolean {
  return candidate.startsWith('keel_live_') || candidate.startsWith('keel_test_');
}

export function generateSessionToken(): string {
  return SESSION_TOKEN_PREFIX + randomBase62(OPAQUE_TOKEN_LENGTH);
}

/** One-time tokens (invitations, MFA challenges): a prefix naming their use, then 40 base62. */
export function generateOpaqueToken(prefix: string): string {
  return `${prefix}_${randomBase62(OPAQUE_TOKEN_LENGTH)}`;
}

/** The form every token is stored and looked up in. */
export function hashToken(token: string): Buffer {
  return hash('sha256', token, 'buffer') as unknown as Buffer;
}

/** The same SHA-256 digest as `hashToken`, in base64: the key of the API key cache. */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'base64');
}

/** The last characters of a key, stored to help people tell their keys apart. */
export function keyHint(key: string): string {
  return key.slice(-4);
}
