/**
 * What happens after an attempt: the pure rules of Standard Webhooks delivery (PROTOCOLS.md).
 */

/** Delays after the first attempt before each retry (Svix's schedule). */
export const RETRY_SCHEDULE_MS = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
] as const;
/** One first attempt plus one per entry of the schedule. */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;
/** Each delay is scaled by a random factor in [1 - JITTER, 1 + JITTER]. */
export const RETRY_JITTER = 0.1;
/** An endpoint that has failed for this long without a success is disabled. */
export const DISABLE_AFTER_FAILING_MS = 5 * 24 * 3_600_000;
/** The longest Retry-After Keel honours; longer answers are capped. */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;
/** Statuses that ask the sender to slow down; their Retry-After is honoured. */
const THROTTLING_STATUSES = new Set([429, 502, 503, 504]);

export interface AttemptOutcome {
  /** Undefined when no response arrived (connection refused, timeout, blocked address). */
  readonly status: number | undefined;
  readonly retryAfter: string | undefined;
}

export type Decision =
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'retry'; readonly delayMs: number }
  | { readonly kind: 'failed' }
  /** 410 Gone: the receiver asks never to be called again. */
  | { readonly kind: 'endpoint_gone' };

export function parseRetryAfterMs(value: string | undefined, now: Date): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now.getTime());
}

/**
 * `attempt` is the number of the attempt that just ended (1 for the first). `random` returns a
 * number in [0, 1) and is injected so tests are exact.
 */
export function decide(outcome: AttemptOutcome, attempt: number, now: Date, random: () => number): Decision {
  const status = outcome.status;
  if (status !== undefined && status >= 200 && status < 300) return { kind: 'succeeded' };
  if (status === 410) return { kind: 'endpoint_gone' };
  if (attempt >= MAX_ATTEMPTS) return { kind: 'failed' };
  const scheduled = RETRY_SCHEDULE_MS[attempt - 1]!;
  const jittered = Math.round(scheduled * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random()));
  if (status !== undefined && THROTTLING_STATUSES.has(status)) {
    const retryAfter = parseRetryAfterMs(outcome.retryAfter, now);
    if (retryAfter !== undefined) return { kind: 'retry', delayMs: Math.min(retryAfter, MAX_RETRY_AFTER_MS) };
  }
  return { kind: 'retry', delayMs: jittered };
}

/** True when an endpoint failing since `failingSince` has failed long enough to be disabled. */
export function shouldDisable(failingSince: Date | null, now: Date): boolean {
  return failingSince !== null && now.getTime() - failingSince.getTime() >= DISABLE_AFTER_FAILING_MS;
}
