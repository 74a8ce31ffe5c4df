import { generate, generateSecret, generateURI, verify } from 'otplib';

/**
 * TOTP as authenticator apps speak it (RFC 6238 defaults: HMAC-SHA1, 6 digits, 30 s steps),
 * through otplib. Time is passed in, never read, so tests choose it.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** Secret size: 20 bytes (160 bits), as RFC 4226 recommends for SHA-1. */
export const TOTP_SECRET_BYTES = 20;
/** Steps accepted either side of the current one, for clock drift between phone and server. */
export const TOTP_DRIFT_STEPS = 1;
/** The issuer shown in the authenticator app next to the account. */
export const TOTP_ISSUER = 'Keel';
export const TOTP_CODE_PATTERN = /^\d{6}$/;

export function newTotpSecret(): string {
  return generateSecret({ length: TOTP_SECRET_BYTES });
}

/** The `otpauth://totp/…` URI an app scans as a QR code. */
export function totpUri(secret: string, accountName: string): string {
  return generateURI({
    issuer: TOTP_ISSUER,
    label: accountName,
    secret,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  });
}

export type TotpCheck = { valid: true; step: number } | { valid: false; reason: 'wrong' | 'replayed' };

/**
 * Checks `code` at `now`, accepting ±TOTP_DRIFT_STEPS. A code whose step is not after
 * `lastUsedStep` is refused as a replay: each code works once, and an older one never works
 * after a newer one did.
 */
export async function checkTotp(options: {
  secret: string;
  code: string;
  now: Date;
  lastUsedStep: number | null;
}): Promise<TotpCheck> {
  if (!TOTP_CODE_PATTERN.test(options.code)) return { valid: false, reason: 'wrong' };
  const epoch = Math.floor(options.now.getTime() / 1000);
  const tolerance = TOTP_DRIFT_STEPS * TOTP_PERIOD_SECONDS;
  const result = await verify({
    secret: options.secret,
    token: options.code,
    epoch,
    epochTolerance: tolerance,
    period: TOTP_PERIOD_SECONDS,
    digits: TOTP_DIGITS,
  });
  if (!result.valid || !('timeStep' in result)) return { valid: false, reason: 'wrong' };
  if (options.lastUsedStep !== null && result.timeStep <= options.lastUsedStep) {
    return { valid: false, reason: 'replayed' };
  }
  return { valid: true, step: result.timeStep };
}

/** The code an authenticator shows at `at`: for tests and for nothing else. */
export function totpCodeAt(secret: string, at: Date): Promise<string> {
  return generate({
    secret,
    epoch: Math.floor(at.getTime() / 1000),
    period: TOTP_PERIOD_SECONDS,
    digits: TOTP_DIGITS,
  });
}
