import { type Algorithm, hash, verify } from '@node-rs/argon2';

/** NIST SP 800-63B asks for at least 8; Keel asks for 12, and caps length to bound hashing work. */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

/**
 * argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane). The parameters
 * are stored in each hash (PHC string), so raising them later only affects new hashes;
 * `needsRehash` tells the login flow to upgrade an old one.
 */
export const ARGON2_OPTIONS = {
  // Algorithm.Argon2id: a const enum, which isolated modules cannot read.
  algorithm: 2 as Algorithm,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

const CURRENT_PARAMETERS = `$m=${ARGON2_OPTIONS.memoryCost},t=${ARGON2_OPTIONS.timeCost},p=${ARGON2_OPTIONS.parallelism}$`;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

export function needsRehash(passwordHash: string): boolean {
  return !passwordHash.startsWith('$argon2id$') || !passwordHash.includes(CURRENT_PARAMETERS);
}

/**
 * A hash of nothing anyone knows, verified when the email matches no user, so that an unknown
 * email takes as long to refuse as a wrong password.
 */
let decoy: Promise<string> | undefined;
export async function verifyDecoy(password: string): Promise<false> {
  decoy ??= hashPassword(`decoy-${Math.random()}`);
  await verifyPassword(await decoy, password);
  return false;
}
