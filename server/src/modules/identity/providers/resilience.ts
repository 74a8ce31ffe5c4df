import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../../infra/clock.ts';

/**
 * The resilience every adapter shares: a timeout per attempt, retries with exponential backoff
 * and jitter on retryable failures only, and a circuit breaker per (org, provider).
 */

/** First retry waits about this long; each further retry doubles it, up to the cap. */
export const RETRY_BASE_DELAY_MS = 50;
export const RETRY_MAX_DELAY_MS = 1_000;
/** Most retries an org may configure per provider call. */
export const MAX_RETRIES = 5;

/** A failure another attempt may fix: a 5xx, a 429, a reset connection, an attempt timeout. */
export class RetryableFailure extends Error {
  constructor(
    readonly outcome: 'timeout' | 'unavailable',
    readonly errorCode: string,
    detail?: string,
    /** The provider asked to wait this long (Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(detail ?? errorCode);
    this.name = 'RetryableFailure';
  }
}

/** Full backoff delay before retry number `attempt` (0-based): base·2^attempt, capped, with jitter. */
export function backoffDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** attempt);
  // "Equal jitter": at least half the ceiling, so retries never bunch at zero.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

const isAbort = (error: unknown) =>
  error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');

/**
 * A signal for one attempt: aborted at `timeoutMs` or when `deadline` aborts. `done()` clears
 * its timer and its listener on the deadline, so a finished attempt leaves nothing behind
 * (AbortSignal.timeout would keep a timer, and AbortSignal.any a link to the deadline, until
 * they fire or the deadline goes).
 */
function attemptSignal(timeoutMs: number, deadline: AbortSignal) {
  const controller = new AbortController();
  const onDeadline = () => controller.abort(deadline.reason);
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  deadline.addEventListener('abort', onDeadline, { once: true });
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      deadline.removeEventListener('abort', onDeadline);
    },
  };
}

/**
 * Runs `attempt` up to `retries + 1` times. Each attempt gets a signal that aborts at
 * `timeoutMs` or when `deadline` aborts. Throws the last RetryableFailure when every attempt
 * failed, a `deadline_exceeded` timeout when the deadline cut it short, and any other error as is.
 */
export async function withRetries<T>(
  attempt: (signal: AbortSignal) => Promise<T>,
  options: {
    readonly retries: number;
    readonly timeoutMs: number;
    readonly deadline: AbortSignal;
    readonly random?: () => number;
    readonly onRetry?: (failure: RetryableFailure, attempt: number) => void;
  },
): Promise<T> {
  for (let index = 0; ; index++) {
    if (options.deadline.aborted) throw new RetryableFailure('timeout', 'deadline_exceeded');
    const { signal, done } = attemptSignal(options.timeoutMs, options.deadline);
    let failure: RetryableFailure;
    try {
      return await attempt(signal);
    } catch (error) {
      if (options.deadline.aborted) throw new RetryableFailure('timeout', 'deadline_exceeded');
      if (error instanceof RetryableFailure) failure = error;
      else if (isAbort(error) || signal.aborted)
        failure = new RetryableFailure('timeout', 'timeout', `no answer within ${options.timeoutMs} ms`);
      else throw error;
    } finally {
      done();
    }
    if (index >= options.retries) throw failure;
    options.onRetry?.(failure, index + 1);
    const delay = Math.min(
      RETRY_MAX_DELAY_MS,
      Math.max(backoffDelayMs(index, options.random), failure.retryAfterMs ?? 0),
    );
    try {
      await sleep(delay, undefined, { signal: options.deadline });
    } catch {
      throw new RetryableFailure('timeout', 'deadline_exceeded');
    }
  }
}

// ── Circuit breaker ──────────────────────────────────────────────────────────────────────────

/** Consecutive failed calls that open the circuit. */
export const BREAKER_FAILURE_THRESHOLD = 5;
/** How long an open circuit refuses calls before it lets a probe through (half-open). */
export const BREAKER_OPEN_MS = 30_000;
/** Calls let through at once while half-open; their outcome closes or re-opens the circuit. */
export const BREAKER_HALF_OPEN_PROBES = 1;
/** Breakers kept per process; the least recently used go first (they start closed again). */
export const MAX_BREAKERS = 10_000;

export type BreakerState = 'closed' | 'open' | 'half_open';

interface Breaker {
  state: BreakerState;
  failures: number;
  openedAtMs: number;
  probes: number;
}

export type Admission =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly retryInMs: number };

/**
 * Circuit breakers, one per key (`org:provider`), in process memory. Each replica keeps its own
 * view of a provider's health; that costs at most BREAKER_FAILURE_THRESHOLD failed calls per
 * replica before it opens too, and needs no shared state on the hot path.
 */
export function createCircuitBreakers(clock: Clock) {
  const breakers = new Map<string, Breaker>();

  const get = (key: string): Breaker => {
    let breaker = breakers.get(key);
    if (breaker) {
      // Re-insert so the Map's order is least recently used first.
      breakers.delete(key);
    } else {
      breaker = { state: 'closed', failures: 0, openedAtMs: 0, probes: 0 };
      if (breakers.size >= MAX_BREAKERS) breakers.delete(breakers.keys().next().value!);
    }
    breakers.set(key, breaker);
    return breaker;
  };

  return {
    /** Asks to make a call; an admitted call must be followed by exactly one `record`. */
    admit(key: string): Admission {
      const breaker = get(key);
      const now = clock.now().getTime();
      if (breaker.state === 'open') {
        const retryInMs = breaker.openedAtMs + BREAKER_OPEN_MS - now;
        if (retryInMs > 0) return { admitted: false, retryInMs };
        breaker.state = 'half_open';
        breaker.probes = 0;
      }
      if (breaker.state === 'half_open') {
        if (breaker.probes >= BREAKER_HALF_OPEN_PROBES) return { admitted: false, retryInMs: 0 };
        breaker.probes += 1;
      }
      return { admitted: true };
    },
    /** `healthy`: the provider answered (whatever the answer); false: it failed or timed out. */
    record(key: string, healthy: boolean) {
      const breaker = get(key);
      if (healthy) {
        breaker.state = 'closed';
        breaker.failures = 0;
        breaker.probes = 0;
        return;
      }
      breaker.failures += 1;
      if (breaker.state === 'half_open' || breaker.failures >= BREAKER_FAILURE_THRESHOLD) {
        breaker.state = 'open';
        breaker.openedAtMs = clock.now().getTime();
        breaker.probes = 0;
      }
    },
  };
}

export type CircuitBreakers = ReturnType<typeof createCircuitBreakers>;
