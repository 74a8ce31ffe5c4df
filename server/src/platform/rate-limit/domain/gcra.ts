/**
 * GCRA (the generic cell rate algorithm), the token bucket expressed as one number per bucket:
 * the theoretical arrival time (TAT) of the next request. A limit of `limit` requests per
 * `windowMs` emits one unit every `windowMs / limit` ms and allows a burst of the whole quota.
 *
 * Several limits are decided together: the grant is the largest count, up to `want`, that every
 * bucket can afford; if it is below `minimum` nothing is consumed anywhere. So a request that
 * one limit denies costs the other limits nothing.
 *
 * This is the model. The Lua script in ../scripts.ts is the same algorithm, line for line, and
 * a test runs both on the same inputs.
 */
export interface Bucket {
  readonly limit: number;
  readonly windowMs: number;
}

export interface BucketOutcome {
  /** Units left after this decision. */
  readonly remaining: number;
  /** Milliseconds until the bucket is full again. */
  readonly resetMs: number;
  /** Milliseconds until `minimum` units fit in this bucket; 0 when they fit now. */
  readonly retryAfterMs: number;
  /** The TAT to store; undefined when nothing was consumed. */
  readonly nextTatMs: number | undefined;
}

export interface Decision {
  readonly granted: number;
  readonly buckets: readonly BucketOutcome[];
}

/** Guards floor() against 0.999999 from floating-point division. */
const EPSILON = 1e-9;

export function decide(
  buckets: readonly Bucket[],
  storedTatsMs: readonly (number | undefined)[],
  nowMs: number,
  want: number,
  minimum: number,
): Decision {
  const tats = buckets.map((_, i) => Math.max(storedTatsMs[i] ?? nowMs, nowMs));
  const intervals = buckets.map((bucket) => bucket.windowMs / bucket.limit);
  const available = buckets.map((bucket, i) =>
    Math.max(0, Math.floor((nowMs + bucket.windowMs - tats[i]!) / intervals[i]! + EPSILON)),
  );
  let granted = want;
  for (const units of available) granted = Math.min(granted, units);
  if (granted < minimum) granted = 0;
  return {
    granted,
    buckets: buckets.map((bucket, i) => {
      const tat = tats[i]!;
      const interval = intervals[i]!;
      if (granted === 0) {
        const short = available[i]! < minimum;
        return {
          remaining: available[i]!,
          resetMs: Math.ceil(tat - nowMs),
          retryAfterMs: short ? Math.ceil(tat + minimum * interval - bucket.windowMs - nowMs) : 0,
          nextTatMs: undefined,
        };
      }
      const next = tat + granted * interval;
      return {
        remaining: available[i]! - granted,
        resetMs: Math.ceil(next - nowMs),
        retryAfterMs: 0,
        nextTatMs: next,
      };
    }),
  };
}
