import type { Clock } from '../../infra/clock.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { KeyValueStore } from '../../infra/redis/kv.ts';
import { gcraArguments, gcraScript } from './scripts.ts';

/** One limit that applies to a request: a bucket in the shared store and its quota. */
export interface LimitRule {
  /** The policy name in the RateLimit headers: `ip`, `key`, `org`, `user`. */
  readonly name: string;
  /** The bucket's store key; rules checked together must share a Redis Cluster hash tag. */
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
}

export interface LimitOutcome {
  readonly rule: LimitRule;
  readonly remaining: number;
  readonly resetMs: number;
  /** 0 unless this rule is why the request was denied. */
  readonly retryAfterMs: number;
}

export interface LimitDecision {
  readonly allowed: boolean;
  readonly outcomes: readonly LimitOutcome[];
  /** Set when the shared store could not decide: `local` (failed open) or `unavailable` (closed). */
  readonly degraded?: 'local' | 'unavailable';
}

export interface RateLimiter {
  /** Takes one unit from every rule's bucket, or from none of them. */
  check(rules: readonly LimitRule[]): Promise<LimitDecision>;
  /**
   * `check` decided from local state alone, without a promise, when it can be (a local-first
   * lease with units left); undefined when `check` must ask the store.
   */
  tryCheck?(rules: readonly LimitRule[]): LimitDecision | undefined;
  close(): Promise<void>;
}

/** A limiter call to the shared store that takes longer than this counts as a failure. */
export const SHARED_STORE_TIMEOUT_MS = 250;

/**
 * The script call, failing after SHARED_STORE_TIMEOUT_MS: a slow Redis must not hold requests.
 * Only calls that really go to the store pay for the timer.
 */
async function decideInStore(
  kv: KeyValueStore,
  rules: readonly LimitRule[],
  want: number,
  timeoutMs: number,
): Promise<number[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      kv.run(
        gcraScript,
        rules.map((rule) => rule.key),
        gcraArguments(rules, want, 1),
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface SharedLimiterOptions {
  /** How long a store call may take before it fails; SHARED_STORE_TIMEOUT_MS unless a test says. */
  readonly timeoutMs?: number;
}

function outcomesOf(rules: readonly LimitRule[], reply: readonly number[]): LimitOutcome[] {
  return rules.map((rule, i) => ({
    rule,
    remaining: reply[1 + i * 3]!,
    resetMs: reply[2 + i * 3]!,
    retryAfterMs: reply[3 + i * 3]!,
  }));
}

/** Exact mode: one atomic script call per request. */
export function createExactLimiter(kv: KeyValueStore, options: SharedLimiterOptions = {}): RateLimiter {
  const timeoutMs = options.timeoutMs ?? SHARED_STORE_TIMEOUT_MS;
  return {
    async check(rules) {
      const reply = await decideInStore(kv, rules, 1, timeoutMs);
      return { allowed: reply[0]! > 0, outcomes: outcomesOf(rules, reply) };
    },
    close: async () => {},
  };
}

/** A lease takes at most this share of a quota at once… */
export const LEASE_FRACTION = 0.01;
/** …and never more than this many units. */
export const MAX_LEASE_UNITS = 100;
/** Refills one request may wait through before it is denied (under heavy contention). */
const MAX_REFILL_WAITS = 1_000;
/** Leases kept per replica before spent and expired ones are swept. */
export const MAX_LEASES = 10_000;
/** Units of a lease left unused this long are given up (they stay consumed in the store). */
export const LEASE_TTL_MS = 1_000;
/**
 * When a lease of two units or more is down to this share of its size, the next one is fetched
 * in the background, so requests do not queue on a refill while a lease runs dry.
 */
export const LEASE_PREFETCH_FRACTION = 0.5;

interface Lease {
  /** Units one reservation asks the store for (`leaseSize` of the rules). */
  readonly size: number;
  units: number;
  expiresAtMs: number;
  outcomes: readonly LimitOutcome[];
  /** A denial is remembered until the store says a unit is free again. */
  deniedUntilMs: number;
  refill: Promise<void> | undefined;
}

export function leaseSize(rules: readonly LimitRule[]): number {
  let size = MAX_LEASE_UNITS;
  for (const rule of rules) size = Math.min(size, Math.max(1, Math.floor(rule.limit * LEASE_FRACTION)));
  return size;
}

/**
 * Local-first mode: a replica takes units from the shared buckets in leases (1 % of the
 * smallest quota, at most 100) with the same atomic script, and spends them locally; when half a
 * lease is left, the next is reserved in the background. Every admitted request was paid for in
 * the store first, so the limit is never exceeded; the cost is under-admission: units leased and
 * not spent within LEASE_TTL_MS are lost, at most one and a half leases per replica and rule set
 * (what is left of one, and the next). With quotas under 200 a lease is one unit, nothing is
 * fetched ahead, and this is exact mode.
 */
export function createLeasingLimiter(
  kv: KeyValueStore,
  clock: Clock,
  options: SharedLimiterOptions = {},
): RateLimiter {
  const timeoutMs = options.timeoutMs ?? SHARED_STORE_TIMEOUT_MS;
  const leases = new Map<string, Lease>();
  // Callers reuse one rules array per key (access caches them), so its lease id is made once.
  const ids = new WeakMap<readonly LimitRule[], string>();
  const idOf = (rules: readonly LimitRule[]): string => {
    let id = ids.get(rules);
    if (id === undefined) {
      id = rules.map((rule) => `${rule.key}|${rule.limit}|${rule.windowMs}`).join(',');
      ids.set(rules, id);
    }
    return id;
  };
  const reserve = async (id: string, rules: readonly LimitRule[], lease: Lease) => {
    const reply = await decideInStore(kv, rules, leaseSize(rules), timeoutMs);
    const outcomes = outcomesOf(rules, reply);
    const nowMs = clock.nowMs();
    lease.outcomes = outcomes;
    if (reply[0]! > 0) {
      lease.units += reply[0]!;
      lease.expiresAtMs = nowMs + LEASE_TTL_MS;
    } else {
      lease.deniedUntilMs = nowMs + Math.max(...outcomes.map((outcome) => outcome.retryAfterMs));
    }
    leases.set(id, lease);
    if (leases.size > MAX_LEASES) {
      for (const [other, entry] of leases) {
        if (entry.expiresAtMs <= nowMs && entry.deniedUntilMs <= nowMs && !entry.refill) leases.delete(other);
      }
    }
  };
  /** Starts a reservation for the lease; requests that need its units await `lease.refill`. */
  const refill = (id: string, rules: readonly LimitRule[], lease: Lease): void => {
    const pending = reserve(id, rules, lease).finally(() => {
      lease.refill = undefined;
    });
    lease.refill = pending;
    // A failure reaches whoever awaits the refill; a prefetch nobody awaits must not go unhandled.
    pending.catch(() => {});
  };
  /** Spends a unit of the lease if it has one left: the decision, or undefined. */
  const spend = (
    id: string,
    rules: readonly LimitRule[],
    lease: Lease,
    nowMs: number,
  ): LimitDecision | undefined => {
    if (lease.expiresAtMs <= nowMs) lease.units = 0;
    if (lease.units <= 0) return undefined;
    lease.units -= 1;
    const left = lease.units;
    if (
      lease.size > 1 &&
      left <= Math.floor(lease.size * LEASE_PREFETCH_FRACTION) &&
      !lease.refill &&
      lease.deniedUntilMs <= nowMs
    ) {
      refill(id, rules, lease);
    }
    return {
      allowed: true,
      outcomes: lease.outcomes.map((outcome) => ({
        ...outcome,
        remaining: outcome.remaining + left,
        retryAfterMs: 0,
      })),
    };
  };
  return {
    tryCheck(rules) {
      const id = idOf(rules);
      const lease = leases.get(id);
      return lease ? spend(id, rules, lease, clock.nowMs()) : undefined;
    },
    async check(rules) {
      const id = idOf(rules);
      let lease = leases.get(id);
      // Each pass spends a unit, returns a denial, or waits for a refill; every refill either
      // grants units or records a denial, so waiting requests make progress. The cap is a guard.
      for (let attempt = 0; attempt < MAX_REFILL_WAITS; attempt++) {
        const nowMs = clock.nowMs();
        if (!lease) {
          lease = {
            size: leaseSize(rules),
            units: 0,
            expiresAtMs: 0,
            outcomes: [],
            deniedUntilMs: 0,
            refill: undefined,
          };
          leases.set(id, lease);
        }
        const spent = spend(id, rules, lease, nowMs);
        if (spent) return spent;
        if (lease.deniedUntilMs > nowMs && !lease.refill) {
          return { allowed: false, outcomes: lease.outcomes };
        }
        if (!lease.refill) refill(id, rules, lease);
        await lease.refill;
        lease = leases.get(id);
      }
      return { allowed: false, outcomes: lease?.outcomes ?? [] };
    },
    close: async () => {
      leases.clear();
    },
  };
}

export const FAILURE_MODES = ['open', 'closed'] as const;
export type FailureMode = (typeof FAILURE_MODES)[number];
/** After a failure, the shared store is left alone this long before one request tries it again. */
export const SHARED_STORE_RETRY_MS = 1_000;

/**
 * Guards a limiter backed by Redis. When Redis fails or is slow, requests are decided at once
 * without waiting on it: `open` decides them with a local in-memory limiter (the same limits, per
 * replica, so N replicas admit up to N times the quota), `closed` answers that limiting is
 * unavailable. One request per SHARED_STORE_RETRY_MS probes Redis until it answers again.
 */
export function withFailover(options: {
  shared: RateLimiter;
  local: RateLimiter;
  mode: FailureMode;
  clock: Clock;
  log: Logger;
  onStateChange?: (healthy: boolean) => void;
}): RateLimiter & { readonly healthy: boolean } {
  const { shared, local, mode, clock, log } = options;
  let downUntilMs = 0;
  let healthy = true;
  const degrade = async (rules: readonly LimitRule[]): Promise<LimitDecision> =>
    mode === 'open'
      ? { ...(await local.check(rules)), degraded: 'local' }
      : { allowed: false, outcomes: [], degraded: 'unavailable' };
  return {
    get healthy() {
      return healthy;
    },
    tryCheck(rules) {
      // Only the healthy path: degrading and recovering go through `check`.
      return healthy && clock.nowMs() >= downUntilMs ? shared.tryCheck?.(rules) : undefined;
    },
    async check(rules) {
      const nowMs = clock.nowMs();
      if (nowMs < downUntilMs) return degrade(rules);
      try {
        // The shared limiters time their own store calls out (SHARED_STORE_TIMEOUT_MS).
        const decision = await shared.check(rules);
        if (!healthy) {
          healthy = true;
          log.info('rate limiting is back on the shared store');
          options.onStateChange?.(true);
        }
        return decision;
      } catch (error) {
        downUntilMs = clock.nowMs() + SHARED_STORE_RETRY_MS;
        if (healthy) {
          healthy = false;
          log.warn(
            { err: error, failureMode: mode },
            mode === 'open'
              ? 'rate limiting cannot reach Redis: limiting per replica in memory'
              : 'rate limiting cannot reach Redis: refusing requests until it is back',
          );
          options.onStateChange?.(false);
        }
        return degrade(rules);
      }
    },
    async close() {
      await Promise.all([shared.close(), local.close()]);
    },
  };
}
