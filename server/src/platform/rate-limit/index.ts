import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import client from 'prom-client';
import type { Config } from '../../config.ts';
import type { Clock } from '../../infra/clock.ts';
import type { Database } from '../../infra/db/database.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { Metrics } from '../../infra/observability/metrics.ts';
import { createMemoryStore, type KeyValueStore } from '../../infra/redis/kv.ts';
import type { EventsService } from '../events/index.ts';
import { RATE_LIMIT_EXCEEDED } from './events.ts';
import {
  createExactLimiter,
  createLeasingLimiter,
  type LimitDecision,
  type LimitRule,
  type RateLimiter,
  withFailover,
} from './limiter.ts';

export { RATE_LIMIT_EVENTS, RATE_LIMIT_EXCEEDED } from './events.ts';
export {
  createExactLimiter,
  createLeasingLimiter,
  FAILURE_MODES,
  type FailureMode,
  LEASE_FRACTION,
  LEASE_TTL_MS,
  type LimitDecision,
  type LimitOutcome,
  type LimitRule,
  leaseSize,
  MAX_LEASE_UNITS,
  type RateLimiter,
  SHARED_STORE_RETRY_MS,
  SHARED_STORE_TIMEOUT_MS,
  withFailover,
} from './limiter.ts';

export const MINUTE_MS = 60_000;

/** A rule with the id it limits, for the rate_limit.exceeded event of its org. */
export interface RateLimitRule extends LimitRule {
  readonly subject?: string;
}

export interface RateLimitService {
  /**
   * Takes one unit from every rule (or none), writes RateLimit-Policy and RateLimit on the reply,
   * and throws RATE_LIMITED (with Retry-After) when a rule denies, or SERVICE_UNAVAILABLE when
   * Redis is down and the failure mode is `closed`.
   */
  enforce(reply: FastifyReply, rules: readonly RateLimitRule[], orgId: string | undefined): Promise<void>;
  /**
   * `enforce` without a promise when the limiter can admit the request from local state: true
   * when it did (headers written); false when `enforce` must run.
   */
  tryAdmit(reply: FastifyReply, rules: readonly RateLimitRule[]): boolean;
  readonly limiter: RateLimiter;
  close(): Promise<void>;
}

/**
 * Keys and channels shared by the replicas of one deployment are namespaced by the database
 * it serves (host, port and name; never credentials), so that staging and production, or two
 * test databases, can share one Redis without sharing limits.
 */
export function deploymentNamespace(config: Config): string {
  const url = new URL(config.database.url ?? 'postgres://embedded/keel');
  return createHash('sha256')
    .update(`${url.hostname}:${url.port}${url.pathname}`)
    .digest('base64url')
    .slice(0, 10);
}

/** `"key";q=1000;w=60, "org";q=10000;w=60` (draft-ietf-httpapi-ratelimit-headers-10). */
export function policyHeader(rules: readonly LimitRule[]): string {
  return rules
    .map((rule) => `"${rule.name}";q=${rule.limit};w=${Math.round(rule.windowMs / 1000)}`)
    .join(', ');
}

/** `"key";r=999;t=1, "org";r=9999;t=1`: remaining units and seconds until the bucket is full. */
export function remainingHeader(decision: LimitDecision): string {
  return decision.outcomes
    .map(
      (outcome) =>
        `"${outcome.rule.name}";r=${Math.max(0, outcome.remaining)};t=${Math.max(0, Math.ceil(outcome.resetMs / 1000))}`,
    )
    .join(', ');
}

export function createRateLimitService(deps: {
  config: Config;
  kv: KeyValueStore;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  database: Database;
  events: EventsService;
}): RateLimitService {
  const { config, kv, clock, log, database, events } = deps;
  const settings = config.rateLimit;
  const sharedLimiter = settings.mode === 'local' ? createLeasingLimiter(kv, clock) : createExactLimiter(kv);
  const fallbackStore = kv.kind === 'redis' ? createMemoryStore(clock) : undefined;
  const limiter: RateLimiter = fallbackStore
    ? withFailover({
        shared: sharedLimiter,
        local: createExactLimiter(fallbackStore),
        mode: settings.onRedisFailure,
        clock,
        log,
        onStateChange: (healthy) => storeUp.set(healthy ? 1 : 0),
      })
    : sharedLimiter;
  const denials = new client.Counter({
    name: 'keel_rate_limit_denied_total',
    help: 'Requests denied by a rate limit, by policy (ip, key, org, user; unavailable when Redis is down and failing closed).',
    labelNames: ['policy'] as const,
    registers: [deps.metrics.registry],
  });
  const storeUp = new client.Gauge({
    name: 'keel_rate_limit_shared_store_up',
    help: '1 while rate limits are decided in Redis, 0 while degraded to the failure mode.',
    registers: [deps.metrics.registry],
  });
  storeUp.set(1);

  // rate_limit.exceeded is sent once per limit and window: the first denial claims the window
  // here (per replica) and in the store (across replicas).
  const announced = new Map<string, number>();
  const announce = (rule: RateLimitRule, orgId: string, retryAfterMs: number) => {
    const nowMs = clock.nowMs();
    if ((announced.get(rule.key) ?? 0) > nowMs) return;
    if (announced.size > 10_000) announced.clear();
    announced.set(rule.key, nowMs + rule.windowMs);
    void (async () => {
      const claimed = await kv.set(`rl-announced:${rule.key}`, '1', {
        ttlMs: rule.windowMs,
        onlyIfAbsent: true,
      });
      if (!claimed) return;
      await database.transaction((tx) =>
        events.emit(tx, orgId, [
          {
            type: RATE_LIMIT_EXCEEDED.type,
            payload: {
              policy: rule.name,
              subject: rule.subject ?? orgId,
              quota: rule.limit,
              windowSeconds: Math.round(rule.windowMs / 1000),
              retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
            },
          },
        ]),
      );
    })().catch((error) => log.warn({ err: error, orgId }, 'could not record rate_limit.exceeded'));
  };

  /** Rule sets reused across requests (a cached key's) format their policy header once. */
  const policies = new WeakMap<readonly RateLimitRule[], string>();

  const policyOf = (rules: readonly RateLimitRule[]): string => {
    let policy = policies.get(rules);
    if (policy === undefined) {
      policy = policyHeader(rules);
      policies.set(rules, policy);
    }
    return policy;
  };

  return {
    limiter,
    tryAdmit(reply, rules) {
      const decision = limiter.tryCheck?.(rules);
      if (!decision?.allowed || decision.degraded) return false;
      reply.header('ratelimit-policy', policyOf(rules));
      reply.header('ratelimit', remainingHeader(decision));
      return true;
    },
    async enforce(reply, rules, orgId) {
      const decision = await limiter.check(rules);
      if (decision.degraded === 'unavailable') {
        denials.inc({ policy: 'unavailable' });
        throw new KeelError('SERVICE_UNAVAILABLE', 'Rate limiting is unavailable; retry shortly', {
          headers: { 'retry-after': '1' },
        });
      }
      reply.header('ratelimit-policy', policyOf(rules));
      reply.header('ratelimit', remainingHeader(decision));
      if (decision.allowed) return;
      let blocking = decision.outcomes[0];
      for (const outcome of decision.outcomes) {
        if (outcome.retryAfterMs > (blocking?.retryAfterMs ?? 0)) blocking = outcome;
      }
      const retryAfterMs = blocking?.retryAfterMs ?? 1_000;
      const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      const rule = (blocking?.rule ?? rules[0]) as RateLimitRule | undefined;
      denials.inc({ policy: rule?.name ?? 'unknown' });
      if (rule && orgId && rule.name !== 'ip') announce(rule, orgId, retryAfterMs);
      throw new KeelError(
        'RATE_LIMITED',
        `The ${rule?.name ?? ''} limit of ${rule?.limit} requests per ${Math.round((rule?.windowMs ?? MINUTE_MS) / 1000)} s is used up; retry in ${retryAfterSeconds} s`,
        {
          headers: { 'retry-after': String(retryAfterSeconds) },
          members: { policy: rule?.name, retryAfterSeconds },
        },
      );
    },
    async close() {
      await limiter.close();
      await fallbackStore?.close();
    },
  };
}
