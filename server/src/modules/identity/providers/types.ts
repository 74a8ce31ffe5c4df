import type { ProviderName } from '../contracts.ts';

/**
 * What a provider said about one input, in Keel's terms. Adapters map each provider's documented
 * answers and errors onto these exactly (see each adapter's doc comment):
 *
 * - `passed`: the provider vouches for a unique human (proof valid, passing score, registered,
 *   unique).
 * - `failed`: the provider answered, and the answer is no (invalid proof, below threshold, not
 *   registered, not unique).
 * - `not_found`: the provider does not know the identifier at all.
 * - `error`: the request cannot succeed as configured or asked (bad API key, unknown app, bad
 *   input); retrying will not help.
 * - `timeout`: no answer in time. `unavailable`: the provider failed (5xx, rate limited, circuit
 *   open). Both are inconclusive, so the policy may ask for review instead of saying no.
 * - `skipped`: the request gave this provider nothing to check (no proof, no EVM address).
 */
export const EVIDENCE_OUTCOMES = [
  'passed',
  'failed',
  'not_found',
  'error',
  'timeout',
  'unavailable',
  'skipped',
] as const;
export type EvidenceOutcome = (typeof EVIDENCE_OUTCOMES)[number];

/** Outcomes that say nothing about the human, only about the provider. */
export const INCONCLUSIVE_OUTCOMES: ReadonlySet<EvidenceOutcome> = new Set([
  'timeout',
  'unavailable',
  'error',
]);
/** Outcomes worth caching: the provider's considered answer, which a repeat would not change. */
export const CACHEABLE_OUTCOMES: ReadonlySet<EvidenceOutcome> = new Set(['passed', 'failed', 'not_found']);

export interface Finding {
  readonly outcome: EvidenceOutcome;
  /** A numeric score when the provider gives one (Passport); else null. */
  readonly score: number | null;
  /** The provider's identifier of the human, the key of "one human, once". */
  readonly identifier: string | null;
  readonly chainId: number | null;
  /** Every chain the identifier was seen on (on-chain providers), for cross-chain binding. */
  readonly chainIds?: readonly number[];
  /** Keel's code for why it is not `passed`, or the provider's own code mapped 1:1. */
  readonly errorCode: string | null;
  /** Provider facts worth keeping with the evidence (no secrets). */
  readonly detail: Readonly<Record<string, unknown>>;
  /** When the provider observed the fact, when it says so; else when Keel asked. */
  readonly observedAt: Date;
  /** When the provider says the fact lapses (Passport stamp expiry, PoH expiration). */
  readonly providerExpiresAt: Date | null;
}

/** A provider configuration as an adapter uses it: secrets opened, defaults applied. */
export interface ResolvedConfig<Settings> {
  readonly orgId: string;
  readonly provider: ProviderName;
  readonly baseUrl: string | null;
  readonly apiKey: string | null;
  readonly settings: Settings;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly cacheTtlSeconds: number;
  /** Changes whenever the configuration changes, so cached answers of an old one are not reused. */
  readonly version: string;
}

export interface CheckContext<Settings> {
  readonly config: ResolvedConfig<Settings>;
  /** Aborted at the attempt's timeout or the verification's deadline. */
  readonly signal: AbortSignal;
  readonly now: () => Date;
}

/**
 * One provider behind Keel's uniform interface. `check` makes one attempt: it returns a finding
 * for every answer the provider gave (including "no" and configuration errors) and throws a
 * RetryableFailure for failures worth another attempt. Retries, timeouts, the circuit breaker
 * and the cache wrap it once, in resilience.ts and runner.ts.
 */
export interface ProviderAdapter<Settings, Input> {
  readonly name: ProviderName;
  /** The part of the input that identifies the question, for the response cache. */
  cacheKey(input: Input): string;
  check(context: CheckContext<Settings>, input: Input): Promise<Finding>;
}

export function finding(now: Date, fields: Partial<Finding> & Pick<Finding, 'outcome'>): Finding {
  return {
    score: null,
    identifier: null,
    chainId: null,
    errorCode: null,
    detail: {},
    observedAt: now,
    providerExpiresAt: null,
    ...fields,
  };
}

// ── Settings per provider (stored in identity_provider_configs.settings) ─────────────────────

export interface WorldIdSettings {
  /** `app_…` from the Developer Portal. */
  readonly appId: string;
  readonly action: string;
  /** `cloud`: the Developer Portal's verify API. `onchain`: WorldIDRouter.verifyProof by eth_call. */
  readonly mode: 'cloud' | 'onchain';
  readonly chainId?: number;
  readonly routerAddress?: string;
  /** Optional `max_age` for cloud verify: oldest Merkle root accepted, in seconds (3600 – 604800). */
  readonly maxRootAgeSeconds?: number;
}

export interface PassportSettings {
  readonly scorerId: string;
}

export interface PohChain {
  readonly chainId: number;
  readonly address: string;
  /** `v1`: isRegistered. `v2`: isHuman + humanityOf. `v2_cross_chain`: also humanityData. */
  readonly version: 'v1' | 'v2' | 'v2_cross_chain';
}

export interface ProofOfHumanitySettings {
  readonly chains: readonly PohChain[];
}

export interface BrightIdSettings {
  /** The app key at the BrightID node (the `app` path segment and the first signed field). */
  readonly app: string;
  /** The node's Ed25519 signing key, base64 (32 bytes): the `publicKey` the node returns. */
  readonly nodePublicKey: string;
  /** Accept only this verification expression of the app; any of them when absent. */
  readonly verification?: string;
  /** Ask the node for `verificationHash` and check it is signed too. */
  readonly includeHash?: boolean;
}

export interface WorldIdInput {
  readonly proof: string;
  readonly merkleRoot: string;
  readonly nullifierHash: string;
  readonly verificationLevel: string;
  /** The raw signal the proof was made for (often the user's address); `''` when none. */
  readonly signal: string;
}

export interface AddressInput {
  /** An EVM address, EIP-55 or lower case. */
  readonly address: string;
}

export interface BrightIdInput {
  readonly appUserId: string;
}
