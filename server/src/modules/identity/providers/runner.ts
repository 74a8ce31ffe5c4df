import { createHash } from 'node:crypto';
import type { Clock } from '../../../infra/clock.ts';
import type { Logger } from '../../../infra/observability/logger.ts';
import type { KeyValueStore } from '../../../infra/redis/kv.ts';
import { ChainNotConfigured } from './chain.ts';
import { ProviderUrlRefused } from './http.ts';
import { type CircuitBreakers, RetryableFailure, withRetries } from './resilience.ts';
import {
  CACHEABLE_OUTCOMES,
  type EvidenceOutcome,
  type Finding,
  finding,
  type ProviderAdapter,
  type ResolvedConfig,
} from './types.ts';

/** A finding as the verification records it: how it was obtained, and how long it took. */
export interface Evidence extends Finding {
  readonly cached: boolean;
  readonly latencyMs: number;
}

const CACHE_PREFIX = 'identity:answer:';

/** Outcomes that mean the provider itself is unwell: they count against its circuit breaker. */
const UNHEALTHY: ReadonlySet<EvidenceOutcome> = new Set(['timeout', 'unavailable']);

interface CachedFinding extends Omit<Finding, 'observedAt' | 'providerExpiresAt'> {
  readonly observedAt: string;
  readonly providerExpiresAt: string | null;
}

const encode = (value: Finding): string =>
  JSON.stringify({
    ...value,
    observedAt: value.observedAt.toISOString(),
    providerExpiresAt: value.providerExpiresAt?.toISOString() ?? null,
  } satisfies CachedFinding);

const decode = (text: string): Finding => {
  const value = JSON.parse(text) as CachedFinding;
  return {
    ...value,
    observedAt: new Date(value.observedAt),
    providerExpiresAt: value.providerExpiresAt ? new Date(value.providerExpiresAt) : null,
  };
};

/**
 * Wraps every adapter call the same way: the response cache (in the key-value store, keyed by
 * org, provider, configuration version and input), the circuit breaker of (org, provider), and
 * retries with backoff under the attempt timeout and the verification's deadline.
 */
export function createProviderRunner(deps: {
  kv: KeyValueStore;
  clock: Clock;
  breakers: CircuitBreakers;
  log: Logger;
}) {
  const { kv, clock, breakers, log } = deps;
  const now = () => clock.now();

  const cacheKey = (config: ResolvedConfig<unknown>, question: string) =>
    CACHE_PREFIX +
    createHash('sha256')
      .update(`${config.orgId}\n${config.provider}\n${config.version}\n${question}`)
      .digest('base64url');

  async function readCache(key: string): Promise<Finding | undefined> {
    try {
      const text = await kv.get(key);
      return text ? decode(text) : undefined;
    } catch (error) {
      // The cache is an optimisation: an unreachable Redis means asking the provider.
      log.warn({ err: error }, 'identity answer cache unreadable');
      return undefined;
    }
  }

  async function attempt<Settings, Input>(
    adapter: ProviderAdapter<Settings, Input>,
    config: ResolvedConfig<Settings>,
    input: Input,
    deadline: AbortSignal,
  ): Promise<Finding> {
    try {
      return await withRetries((signal) => adapter.check({ config, signal, now }, input), {
        retries: config.retries,
        timeoutMs: config.timeoutMs,
        deadline,
      });
    } catch (error) {
      if (error instanceof RetryableFailure)
        return finding(now(), {
          outcome: error.outcome,
          errorCode: error.errorCode,
          detail: { message: error.message },
        });
      if (error instanceof ProviderUrlRefused)
        return finding(now(), {
          outcome: 'error',
          errorCode: 'base_url_refused',
          detail: { message: error.message },
        });
      if (error instanceof ChainNotConfigured)
        return finding(now(), {
          outcome: 'error',
          errorCode: 'chain_not_configured',
          chainId: error.chainId,
          detail: { message: error.message },
        });
      throw error;
    }
  }

  return {
    async run<Settings, Input>(
      adapter: ProviderAdapter<Settings, Input>,
      config: ResolvedConfig<Settings>,
      input: Input,
      deadline: AbortSignal,
    ): Promise<Evidence> {
      const startedAt = performance.now();
      const elapsed = () => Math.round(performance.now() - startedAt);
      const key = cacheKey(config as ResolvedConfig<unknown>, adapter.cacheKey(input));
      if (config.cacheTtlSeconds > 0) {
        const cached = await readCache(key);
        if (cached) return { ...cached, cached: true, latencyMs: elapsed() };
      }
      const breakerKey = `${config.orgId}:${config.provider}`;
      const admission = breakers.admit(breakerKey);
      if (!admission.admitted)
        return {
          ...finding(now(), {
            outcome: 'unavailable',
            errorCode: 'circuit_open',
            detail: { retryInMs: admission.retryInMs },
          }),
          cached: false,
          latencyMs: elapsed(),
        };
      let result: Finding;
      try {
        result = await attempt(adapter, config, input, deadline);
      } catch (error) {
        breakers.record(breakerKey, false);
        throw error;
      }
      breakers.record(breakerKey, !UNHEALTHY.has(result.outcome));
      if (config.cacheTtlSeconds > 0 && CACHEABLE_OUTCOMES.has(result.outcome)) {
        // Not awaited: the verification need not wait for the cache to hold the answer.
        void kv
          .set(key, encode(result), { ttlMs: config.cacheTtlSeconds * 1000 })
          .catch((error) => log.warn({ err: error }, 'identity answer cache unwritable'));
      }
      return { ...result, cached: false, latencyMs: elapsed() };
    },
  };
}

export type ProviderRunner = ReturnType<typeof createProviderRunner>;
