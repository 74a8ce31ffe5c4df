import type { ChainRegistry } from '../../infra/chains/index.ts';
import type { Clock } from '../../infra/clock.ts';
import type { Db } from '../../infra/db/database.ts';
import { type FieldError, KeelError } from '../../infra/http/errors.ts';
import type { SsrfGuard } from '../../infra/http/ssrf.ts';
import type { SecretBox } from '../../infra/keystore/secret-box.ts';
import type { ProviderName } from './contracts.ts';
import { defaultPolicy, type Policy, type ProviderPolicy } from './domain/policy.ts';
import type { ResolvedConfig } from './providers/types.ts';
import {
  deleteProviderConfig,
  findPolicy,
  listProviderConfigs,
  type ProviderConfigRow,
  upsertPolicy,
  upsertProviderConfig,
} from './store.ts';

/** An attempt to a provider gives up after this long unless the org sets another timeout. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 1_500;
export const MIN_PROVIDER_TIMEOUT_MS = 50;
export const MAX_PROVIDER_TIMEOUT_MS = 10_000;
export const DEFAULT_PROVIDER_RETRIES = 2;
/** Provider answers are reused for this long unless the org sets another TTL (0 turns it off). */
export const DEFAULT_CACHE_TTL_SECONDS = 300;
export const MAX_CACHE_TTL_SECONDS = 86_400;
/**
 * How long a process reuses an org's configuration and policy before reading them again. A
 * change made through another replica takes effect there within this long.
 */
export const CONFIG_CACHE_MS = 5_000;
/** Orgs whose configuration one process keeps in memory at once. */
export const MAX_CACHED_ORGS = 10_000;

export interface ProviderConfigInput {
  readonly enabled?: boolean;
  readonly baseUrl?: string | null;
  /** Absent: keep the stored key. Null: remove it. */
  readonly apiKey?: string | null;
  readonly timeoutMs?: number;
  readonly retries?: number;
  readonly cacheTtlSeconds?: number;
  readonly settings: Record<string, unknown>;
}

export interface ProviderConfigView {
  readonly provider: ProviderName;
  readonly enabled: boolean;
  readonly baseUrl: string | null;
  readonly hasApiKey: boolean;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly cacheTtlSeconds: number;
  readonly settings: Record<string, unknown>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface PolicyInput {
  readonly providers: Partial<
    Record<
      ProviderName,
      { weight?: number; minScore?: number; required?: boolean; maxEvidenceAgeSeconds?: number }
    >
  >;
  readonly minSources?: number;
  readonly minTotalWeight?: number;
  readonly duplicateOutcome?: Policy['duplicateOutcome'];
}

/** What one verification needs: the enabled providers' configurations and the policy. */
export interface OrgSetup {
  readonly configs: ReadonlyMap<ProviderName, ResolvedConfig<unknown>>;
  readonly policy: Policy;
  readonly policyIsDefault: boolean;
}

const sealContext = (orgId: string, provider: ProviderName) => `identity_provider:${orgId}:${provider}`;

const view = (row: ProviderConfigRow): ProviderConfigView => ({
  provider: row.provider,
  enabled: row.enabled,
  baseUrl: row.base_url,
  hasApiKey: row.api_key_sealed !== null,
  timeoutMs: row.timeout_ms,
  retries: row.retries,
  cacheTtlSeconds: row.cache_ttl_seconds,
  settings: row.settings,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

function fail(errors: FieldError[]): never {
  throw new KeelError('VALIDATION_FAILED', errors.map((e) => `body${e.path} ${e.message}`).join('; '), {
    errors,
  });
}

/**
 * Per-org provider configuration (base URL, sealed API key, provider settings, timeouts) and the
 * verdict policy, with a short in-process cache for the verification hot path.
 */
export function createConfigurationService(deps: {
  db: Db;
  clock: Clock;
  secretBox: SecretBox;
  guard: SsrfGuard;
  chains: ChainRegistry;
}) {
  const { db, clock, secretBox, guard, chains } = deps;
  const cache = new Map<string, { setup: OrgSetup; expiresAtMs: number }>();

  function checkProviderInput(
    provider: ProviderName,
    input: ProviderConfigInput,
    existing: ProviderConfigRow | undefined,
  ) {
    const errors: FieldError[] = [];
    const error = (path: string, message: string) => errors.push({ path, in: 'body', message });
    if (input.baseUrl) {
      const checked = guard.checkUrl(input.baseUrl);
      if (!checked.ok) error('/baseUrl', checked.reason);
    }
    const chainConfigured = (chainId: number, path: string) => {
      if (!chains.client(chainId))
        error(path, `no RPC URL is configured for chain ${chainId} (CHAIN_RPC_URLS)`);
    };
    const settings = input.settings;
    switch (provider) {
      case 'world_id':
        if (settings.mode === 'onchain') {
          if (settings.chainId === undefined) error('/chainId', 'is required when mode is onchain');
          else chainConfigured(settings.chainId as number, '/chainId');
          if (settings.routerAddress === undefined)
            error('/routerAddress', 'is required when mode is onchain');
        }
        break;
      case 'passport': {
        const keyAfter = input.apiKey === undefined ? existing?.api_key_sealed : input.apiKey;
        if (!keyAfter) error('/apiKey', 'is required: the Stamps API needs an API key');
        break;
      }
      case 'proof_of_humanity': {
        const list = settings.chains as { chainId: number; address: string }[];
        const seen = new Set<string>();
        for (const [index, chain] of list.entries()) {
          chainConfigured(chain.chainId, `/chains/${index}/chainId`);
          const key = `${chain.chainId}:${chain.address.toLowerCase()}`;
          if (seen.has(key)) error(`/chains/${index}`, 'lists the same contract twice');
          seen.add(key);
        }
        break;
      }
      case 'brightid':
        if (Buffer.from(settings.nodePublicKey as string, 'base64').length !== 32)
          error('/nodePublicKey', 'must be a base64 Ed25519 public key (32 bytes)');
        break;
    }
    if (errors.length > 0) fail(errors);
  }

  function checkPolicy(input: PolicyInput): Policy {
    const errors: FieldError[] = [];
    const providers: Partial<Record<ProviderName, ProviderPolicy>> = {};
    for (const [provider, rule] of Object.entries(input.providers) as [
      ProviderName,
      NonNullable<PolicyInput['providers'][ProviderName]>,
    ][]) {
      if (rule.minScore !== undefined && provider !== 'passport')
        errors.push({
          path: `/providers/${provider}/minScore`,
          in: 'body',
          message: 'only Human Passport reports a score',
        });
      providers[provider] = {
        weight: rule.weight ?? 1,
        required: rule.required ?? false,
        maxEvidenceAgeSeconds:
          rule.maxEvidenceAgeSeconds ?? defaultPolicy([provider]).providers[provider]!.maxEvidenceAgeSeconds,
        ...(rule.minScore === undefined ? {} : { minScore: rule.minScore }),
      };
    }
    const count = Object.keys(providers).length;
    if (count === 0)
      errors.push({ path: '/providers', in: 'body', message: 'must name at least one provider' });
    const minSources = input.minSources ?? 1;
    if (minSources > count)
      errors.push({
        path: '/minSources',
        in: 'body',
        message: `is more than the ${count} providers the policy names`,
      });
    if (errors.length > 0) fail(errors);
    return {
      providers,
      minSources,
      minTotalWeight: input.minTotalWeight ?? 0,
      duplicateOutcome: input.duplicateOutcome ?? 'needs_review',
    };
  }

  async function load(orgId: string): Promise<OrgSetup> {
    const [rows, policyRow] = await Promise.all([listProviderConfigs(db, orgId), findPolicy(db, orgId)]);
    const configs = new Map<ProviderName, ResolvedConfig<unknown>>();
    for (const row of rows) {
      if (!row.enabled) continue;
      configs.set(row.provider, {
        orgId,
        provider: row.provider,
        baseUrl: row.base_url,
        apiKey: row.api_key_sealed
          ? secretBox.open(row.api_key_sealed, sealContext(orgId, row.provider))
          : null,
        settings: row.settings,
        timeoutMs: row.timeout_ms,
        retries: row.retries,
        cacheTtlSeconds: row.cache_ttl_seconds,
        version: String(row.updated_at.getTime()),
      });
    }
    return policyRow
      ? { configs, policy: policyRow.policy, policyIsDefault: false }
      : { configs, policy: defaultPolicy([...configs.keys()]), policyIsDefault: true };
  }

  const invalidate = (orgId: string) => cache.delete(orgId);

  return {
    async setup(orgId: string): Promise<OrgSetup> {
      const now = clock.now().getTime();
      const hit = cache.get(orgId);
      if (hit && hit.expiresAtMs > now) return hit.setup;
      const setup = await load(orgId);
      cache.delete(orgId);
      if (cache.size >= MAX_CACHED_ORGS) cache.delete(cache.keys().next().value!);
      cache.set(orgId, { setup, expiresAtMs: now + CONFIG_CACHE_MS });
      return setup;
    },

    async list(orgId: string): Promise<ProviderConfigView[]> {
      return (await listProviderConfigs(db, orgId)).map(view);
    },

    async get(orgId: string, provider: ProviderName): Promise<ProviderConfigView> {
      const row = (await listProviderConfigs(db, orgId)).find((candidate) => candidate.provider === provider);
      if (!row) throw new KeelError('IDENTITY_PROVIDER_NOT_CONFIGURED', `${provider} is not configured`);
      return view(row);
    },

    async put(
      orgId: string,
      provider: ProviderName,
      input: ProviderConfigInput,
    ): Promise<ProviderConfigView> {
      const existing = (await listProviderConfigs(db, orgId)).find((row) => row.provider === provider);
      checkProviderInput(provider, input, existing);
      const now = clock.now();
      // The update time is also the configuration's cache version: a changed configuration
      // never answers from answers cached under the old one.
      const updatedAt =
        existing && existing.updated_at.getTime() >= now.getTime()
          ? new Date(existing.updated_at.getTime() + 1)
          : now;
      const apiKeySealed =
        input.apiKey === undefined
          ? (existing?.api_key_sealed ?? null)
          : input.apiKey === null
            ? null
            : secretBox.seal(input.apiKey, sealContext(orgId, provider));
      const row = await upsertProviderConfig(db, {
        org_id: orgId,
        provider,
        enabled: input.enabled ?? true,
        base_url: input.baseUrl ?? null,
        api_key_sealed: apiKeySealed,
        settings: input.settings,
        timeout_ms: input.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS,
        retries: input.retries ?? DEFAULT_PROVIDER_RETRIES,
        cache_ttl_seconds: input.cacheTtlSeconds ?? DEFAULT_CACHE_TTL_SECONDS,
        created_at: existing?.created_at ?? now,
        updated_at: updatedAt,
      });
      invalidate(orgId);
      return view(row);
    },

    async remove(orgId: string, provider: ProviderName): Promise<void> {
      if (!(await deleteProviderConfig(db, orgId, provider)))
        throw new KeelError('IDENTITY_PROVIDER_NOT_CONFIGURED', `${provider} is not configured`);
      invalidate(orgId);
    },

    async getPolicy(orgId: string): Promise<{ policy: Policy; isDefault: boolean; updatedAt: Date | null }> {
      const row = await findPolicy(db, orgId);
      if (row) return { policy: row.policy, isDefault: false, updatedAt: row.updated_at };
      const enabled = (await listProviderConfigs(db, orgId))
        .filter((config) => config.enabled)
        .map((config) => config.provider);
      return { policy: defaultPolicy(enabled), isDefault: true, updatedAt: null };
    },

    async putPolicy(orgId: string, input: PolicyInput): Promise<{ policy: Policy; updatedAt: Date }> {
      const policy = checkPolicy(input);
      const row = await upsertPolicy(db, orgId, policy, clock.now());
      invalidate(orgId);
      return { policy: row.policy, updatedAt: row.updated_at };
    },
  };
}

export type ConfigurationService = ReturnType<typeof createConfigurationService>;
