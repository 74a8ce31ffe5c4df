import { createHash, randomInt } from 'node:crypto';

/** Codes handed out at once; each works one time. */
export const RECOVERY_CODE_COUNT = 10;
/**
 * Lower-case letters and digits without the look-alikes 0/o, 1/l/i: 31 characters. Two groups of
 * five make ~49.5 bits per code, far beyond guessing at the rate sign-in attempts are limited to.
 */
const ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
const GROUP_LENGTH = 5;

/** `abcde-fghjk`, formatted for people to copy. */
export function newRecoveryCode(): string {
  const group = () =>
    Array.from({ length: GROUP_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  return `${group()}-${group()}`;
}

export function newRecoveryCodes(): string[] {
  const codes = new Set<string>();
  while (codes.size < RECOVERY_CODE_COUNT) codes.add(newRecoveryCode());
  return [...codes];
}

/** What people type back: case, spaces and the dash do not matter. */
export function normalizeRecoveryCode(input: string): string | undefined {
  const compact = input.toLowerCase().replace(/[\s-]/g, '');
  return /^[a-z0-9]{10}$/.test(compact) ? compact : undefined;
}

/**
 * Codes are random and long, so a fast hash is enough (like API keys); they are stored only as
 * this, over the normalized form.
 */
export function hashRecoveryCode(code: string): Buffer {
  const normalized = normalizeRecoveryCode(code);
  if (!normalized) throw new Error('not a recovery code');
  return createHash('sha256').update(`keel-recovery:${normalized}`).digest();
}

/** Which kind of second factor a submitted code is. */
export function classifySecondFactor(code: string): 'totp' | 'recovery' | 'invalid' {
  const trimmed = code.trim();
  if (/^\d{6}$/.test(trimmed)) return 'totp';
  return normalizeRecoveryCode(trimmed) ? 'recovery' : 'invalid';
}
