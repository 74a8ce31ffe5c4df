import { createHash } from 'node:crypto';
import type { Clock } from '../../infra/clock.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { KeyValueStore } from '../../infra/redis/kv.ts';
import {
  ACCOUNT_THROTTLE,
  ADDRESS_THROTTLE,
  judge,
  locksOut,
  type ThrottlePolicy,
  type ThrottleState,
  type ThrottleVerdict,
} from './domain/login-throttle.ts';

export interface LoginThrottle {
  /** The stricter verdict of the account's and the address's failures. */
  check(email: string, ip: string): Promise<ThrottleVerdict>;
  recordFailure(email: string, ip: string): Promise<void>;
  /** Forgets the account's failures (after a successful sign-in or a password reset). */
  clear(email: string): Promise<void>;
}

/**
 * Failure counts live in the shared store, so every replica sees them. If the store cannot be
 * reached the check lets the attempt through (password hashing still slows guessing) and says
 * so in the log: sign-in keeps working while Redis is down.
 */
export function createLoginThrottle(deps: {
  kv: KeyValueStore;
  clock: Clock;
  log: Logger;
  namespace: string;
}): LoginThrottle {
  const { kv, clock, log, namespace } = deps;
  // Emails and addresses are hashed: the store holds no personal data in its key names.
  const keysOf = (kind: 'account' | 'address', subject: string) => {
    const id = createHash('sha256').update(subject).digest('base64url').slice(0, 22);
    const base = `${namespace}:login:${kind}:${id}`;
    return { count: `${base}:n`, last: `${base}:last`, lock: `${base}:lock` };
  };
  const read = async (kind: 'account' | 'address', subject: string): Promise<ThrottleState> => {
    const keys = keysOf(kind, subject);
    const [count, last, lock] = await Promise.all([kv.get(keys.count), kv.get(keys.last), kv.get(keys.lock)]);
    return {
      failures: Number(count ?? 0),
      lastFailureAtMs: last === null ? undefined : Number(last),
      lockedUntilMs: lock === null ? undefined : Number(lock),
    };
  };
  const fail = async (kind: 'account' | 'address', subject: string, policy: ThrottlePolicy) => {
    const keys = keysOf(kind, subject);
    const nowMs = clock.now().getTime();
    const failures = await kv.increment(keys.count, 1, policy.windowMs);
    await kv.set(keys.last, String(nowMs), { ttlMs: policy.windowMs });
    if (locksOut(failures, policy)) {
      await kv.set(keys.lock, String(nowMs + policy.lockoutMs), { ttlMs: policy.lockoutMs });
    }
  };
  return {
    async check(email, ip) {
      try {
        const nowMs = clock.now().getTime();
        const [account, address] = await Promise.all([read('account', email), read('address', ip)]);
        const verdicts = [judge(account, nowMs, ACCOUNT_THROTTLE), judge(address, nowMs, ADDRESS_THROTTLE)];
        let worst: ThrottleVerdict = { allowed: true };
        for (const verdict of verdicts) {
          if (!verdict.allowed && (worst.allowed || verdict.retryAfterMs > worst.retryAfterMs))
            worst = verdict;
        }
        return worst;
      } catch (error) {
        log.warn({ err: error }, 'sign-in throttle unavailable: attempt allowed');
        return { allowed: true };
      }
    },
    async recordFailure(email, ip) {
      try {
        await Promise.all([fail('account', email, ACCOUNT_THROTTLE), fail('address', ip, ADDRESS_THROTTLE)]);
      } catch (error) {
        log.warn({ err: error }, 'sign-in throttle unavailable: failure not counted');
      }
    },
    async clear(email) {
      const keys = keysOf('account', email);
      try {
        await Promise.all([kv.delete(keys.count), kv.delete(keys.last), kv.delete(keys.lock)]);
      } catch (error) {
        log.warn({ err: error }, 'sign-in throttle unavailable: failures not cleared');
      }
    },
  };
}
