/**
 * Failed sign-ins back off, then lock out, counted per account and per client address. The
 * numbers are per policy; failures are forgotten `windowMs` after the first one, and a success
 * forgets the account's failures (not the address's).
 *
 * - The first `freeFailures` failures cost nothing.
 * - After that, each new attempt must wait `baseDelayMs × 2^(failures − freeFailures)` after the
 *   last failure, capped at `maxDelayMs`.
 * - At `lockoutFailures` the subject is locked for `lockoutMs`, whatever password is sent.
 */
export interface ThrottlePolicy {
  readonly freeFailures: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly lockoutFailures: number;
  readonly lockoutMs: number;
  readonly windowMs: number;
}

const MINUTE_MS = 60_000;

export const ACCOUNT_THROTTLE: ThrottlePolicy = {
  freeFailures: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  lockoutFailures: 10,
  lockoutMs: 15 * MINUTE_MS,
  windowMs: 15 * MINUTE_MS,
};

/** An address may fail more often: offices and carrier NAT share one. */
export const ADDRESS_THROTTLE: ThrottlePolicy = {
  freeFailures: 20,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  lockoutFailures: 100,
  lockoutMs: 15 * MINUTE_MS,
  windowMs: 15 * MINUTE_MS,
};

export interface ThrottleState {
  readonly failures: number;
  readonly lastFailureAtMs: number | undefined;
  readonly lockedUntilMs: number | undefined;
}

export type ThrottleVerdict =
  | { allowed: true }
  | { allowed: false; reason: 'backoff' | 'locked'; retryAfterMs: number };

export function delayAfter(failures: number, policy: ThrottlePolicy): number {
  if (failures < policy.freeFailures) return 0;
  return Math.min(policy.baseDelayMs * 2 ** (failures - policy.freeFailures), policy.maxDelayMs);
}

export function judge(state: ThrottleState, nowMs: number, policy: ThrottlePolicy): ThrottleVerdict {
  if (state.lockedUntilMs !== undefined && state.lockedUntilMs > nowMs) {
    return { allowed: false, reason: 'locked', retryAfterMs: state.lockedUntilMs - nowMs };
  }
  const delay = delayAfter(state.failures, policy);
  if (delay > 0 && state.lastFailureAtMs !== undefined && state.lastFailureAtMs + delay > nowMs) {
    return { allowed: false, reason: 'backoff', retryAfterMs: state.lastFailureAtMs + delay - nowMs };
  }
  return { allowed: true };
}

/** Whether a failure that brings the count to `failures` starts a lockout. */
export function locksOut(failures: number, policy: ThrottlePolicy): boolean {
  return failures >= policy.lockoutFailures;
}
