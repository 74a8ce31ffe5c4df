import { randomFillSync } from 'node:crypto';
import { TypeID } from 'typeid-js';

/**
 * Keel's ids are TypeIDs: a prefix naming the kind of thing, then a UUIDv7 in Crockford
 * base32, so they sort by creation time (`org_01jd7x8m3q9f2k5v6w7y8z9a0b`). Each module
 * declares the prefixes it mints with `defineIdPrefixes`; infra mints only request ids.
 */
export const ID_PREFIXES = ['req'] as const;
export type IdPrefix = (typeof ID_PREFIXES)[number] | (string & {});

/** A TypeID prefix: lowercase letters and underscores, at most 63 characters, not ending in `_`. */
const PREFIX_PATTERN = /^[a-z]([a-z_]{0,61}[a-z])?$/;

const prefixOwners = new Map<string, string>(ID_PREFIXES.map((prefix) => [prefix, 'keel']));

/**
 * Declares the id prefixes a module mints. A prefix names one kind of thing everywhere: one
 * another module owns is a programmer error. Prefer a readable word (`invoice`, `endpoint`).
 */
export function defineIdPrefixes<const Prefixes extends readonly string[]>(
  owner: string,
  prefixes: Prefixes,
): Prefixes {
  for (const prefix of prefixes) {
    if (!PREFIX_PATTERN.test(prefix)) throw new Error(`id prefix must match ${PREFIX_PATTERN}: ${prefix}`);
    const existing = prefixOwners.get(prefix);
    if (existing !== undefined && existing !== owner) {
      throw new Error(`id prefix ${prefix} is declared by ${existing} and again by ${owner}`);
    }
    prefixOwners.set(prefix, owner);
  }
  return prefixes;
}

/** Every declared prefix and the module that owns it. */
export function registeredIdPrefixes(): ReadonlyMap<string, string> {
  return prefixOwners;
}

export type IdGenerator = (prefix: IdPrefix) => string;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** Random bytes are drawn from a pool refilled in one call, not one syscall per id. */
const RANDOM_POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(RANDOM_POOL_BYTES);
let poolOffset = RANDOM_POOL_BYTES;
const bytes = new Uint8Array(16);

let lastMs = -1;

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, 74 random bits. Ids made
 * in the same millisecond by this process count up from the first one's random bits (RFC 9562
 * §6.2, method 2), so they still sort in creation order.
 */
function uuidv7(nowMs: number): Uint8Array {
  if (nowMs === lastMs) {
    for (let i = 15; i >= 9; i--) {
      bytes[i] = (bytes[i]! + 1) & 0xff;
      if (bytes[i] !== 0) return bytes;
    }
    // 56 bits of counter ran out within one millisecond: fall through to fresh random bits.
  }
  lastMs = nowMs;
  if (poolOffset + 10 > RANDOM_POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const high = Math.floor(nowMs / 0x1000000);
  const low = nowMs % 0x1000000;
  bytes[0] = (high >>> 16) & 0xff;
  bytes[1] = (high >>> 8) & 0xff;
  bytes[2] = high & 0xff;
  bytes[3] = (low >>> 16) & 0xff;
  bytes[4] = (low >>> 8) & 0xff;
  bytes[5] = low & 0xff;
  for (let i = 6; i < 16; i++) bytes[i] = pool[poolOffset++]!;
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return bytes;
}

/**
 * The first 10 characters of the TypeID base32 suffix: exactly the 48-bit timestamp (bytes 0-5;
 * the first character holds 3 bits), so every id of one millisecond shares them.
 */
function encodeTime(b: Uint8Array): string {
  const a = ALPHABET;
  return (
    a[(b[0]! & 224) >> 5]! +
    a[b[0]! & 31] +
    a[(b[1]! & 248) >> 3] +
    a[((b[1]! & 7) << 2) | ((b[2]! & 192) >> 6)] +
    a[(b[2]! & 62) >> 1] +
    a[((b[2]! & 1) << 4) | ((b[3]! & 240) >> 4)] +
    a[((b[3]! & 15) << 1) | ((b[4]! & 128) >> 7)] +
    a[(b[4]! & 124) >> 2] +
    a[((b[4]! & 3) << 3) | ((b[5]! & 224) >> 5)] +
    a[b[5]! & 31]
  );
}

/** The other 16 characters of the suffix: version, variant and the random or counter bits. */
function encodeRest(b: Uint8Array): string {
  const a = ALPHABET;
  return (
    a[(b[6]! & 248) >> 3]! +
    a[((b[6]! & 7) << 2) | ((b[7]! & 192) >> 6)] +
    a[(b[7]! & 62) >> 1] +
    a[((b[7]! & 1) << 4) | ((b[8]! & 240) >> 4)] +
    a[((b[8]! & 15) << 1) | ((b[9]! & 128) >> 7)] +
    a[(b[9]! & 124) >> 2] +
    a[((b[9]! & 3) << 3) | ((b[10]! & 224) >> 5)] +
    a[b[10]! & 31] +
    a[(b[11]! & 248) >> 3] +
    a[((b[11]! & 7) << 2) | ((b[12]! & 192) >> 6)] +
    a[(b[12]! & 62) >> 1] +
    a[((b[12]! & 1) << 4) | ((b[13]! & 240) >> 4)] +
    a[((b[13]! & 15) << 1) | ((b[14]! & 128) >> 7)] +
    a[(b[14]! & 124) >> 2] +
    a[((b[14]! & 3) << 3) | ((b[15]! & 224) >> 5)] +
    a[b[15]! & 31]
  );
}

let timeCharsMs = -1;
let timeChars = '';

/**
 * A new TypeID. Written here rather than through typeid-js's generator because ids are made on
 * hot paths (one per request, one per ledger transfer); the format is exactly TypeID's, and
 * typeid-js parses it (see ids.test.ts). The timestamp's characters are encoded once per
 * millisecond.
 */
export const newId: IdGenerator = (prefix) => {
  const nowMs = Date.now();
  const b = uuidv7(nowMs);
  if (nowMs !== timeCharsMs) {
    timeCharsMs = nowMs;
    timeChars = encodeTime(b);
  }
  return `${prefix}_${timeChars}${encodeRest(b)}`;
};

/** True when `value` is a well-formed id with the given prefix. */
export function isId(value: string, prefix: IdPrefix): boolean {
  try {
    return TypeID.fromString(value).getType() === prefix;
  } catch {
    return false;
  }
}
