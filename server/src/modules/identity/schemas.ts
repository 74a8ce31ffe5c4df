import { type TSchema, Type } from 'typebox';
import {
  DEFAULT_CACHE_TTL_SECONDS,
  DEFAULT_PROVIDER_RETRIES,
  DEFAULT_PROVIDER_TIMEOUT_MS,
  MAX_CACHE_TTL_SECONDS,
  MAX_PROVIDER_TIMEOUT_MS,
  MIN_PROVIDER_TIMEOUT_MS,
} from './configuration.ts';
import { MAX_EVIDENCE_AGE_SECONDS, MAX_WEIGHT } from './domain/policy.ts';
import { MAX_RETRIES } from './providers/resilience.ts';

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;
export const MAX_EXTERNAL_ID_LENGTH = 200;
/** Keys of a subject's metadata. */
export const MAX_METADATA_KEYS = 50;
export const MAX_POH_CHAINS = 10;
export const MAX_PROOF_LENGTH = 1_000;
export const MAX_ANALYTICS_DAYS = 366;

const iso = Type.String({ format: 'date-time', examples: ['2026-11-24T12:00:00.000Z'] });
const nullable = <T extends TSchema>(schema: T, options: { description?: string } = {}) =>
  Type.Union([schema, Type.Null()], options);
const SubjectId = Type.String({
  pattern: '^sbj_[0-9a-z]{26}$',
  examples: ['sbj_01jd7x8m3q9f2k5v6w7y8z9a0b'],
});
const VerificationId = Type.String({
  pattern: '^vrf_[0-9a-z]{26}$',
  examples: ['vrf_01jd7x8m3q9f2k5v6w7y8z9a0b'],
});
const ProviderName = Type.Union(
  [
    Type.Literal('world_id'),
    Type.Literal('passport'),
    Type.Literal('proof_of_humanity'),
    Type.Literal('brightid'),
  ],
  { description: 'A personhood provider.', examples: ['passport'] },
);
const Outcome = Type.Union(
  [Type.Literal('verified'), Type.Literal('not_verified'), Type.Literal('needs_review')],
  {
    examples: ['verified'],
  },
);
const HexAddress = Type.String({
  pattern: '^0x[0-9a-fA-F]{40}$',
  examples: ['0x2C1E111d7C3adc823B5fA3af3f07EB62831C3c5a'],
});
const HexUint = Type.String({
  pattern: '^0x[0-9a-fA-F]{1,64}$',
  examples: ['0x1f38b57f3bdf96f05ea62fa68814871bf0ca8ce4dbe073d8497d5a6b0a53e5e0'],
});

export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), nextCursor: nullable(Type.String()) });

export const PageQuery = Type.Object({
  cursor: Type.Optional(Type.String({ maxLength: 64 })),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE }),
});

// ── Subjects ──────────────────────────────────────────────────────────────────────────────────

export const SubjectParams = Type.Object({ subjectId: SubjectId });

export const CreateSubjectBody = Type.Object(
  {
    externalId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_EXTERNAL_ID_LENGTH,
        description:
          'Your own id for this human, unique in the org. Creating it again returns the same subject.',
        examples: ['user-4821'],
      }),
    ),
    metadata: Type.Optional(
      Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
        maxProperties: MAX_METADATA_KEYS,
        description: 'Free-form data kept with the subject.',
        examples: [{ plan: 'pro' }],
      }),
    ),
  },
  { additionalProperties: false },
);

export const SubjectSchema = Type.Object(
  {
    id: SubjectId,
    externalId: nullable(Type.String()),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    createdAt: iso,
    updatedAt: iso,
  },
  { $id: 'IdentitySubject', title: 'IdentitySubject', description: 'One human, as an org knows them.' },
);

// ── Provider configuration ────────────────────────────────────────────────────────────────────

const common = {
  enabled: Type.Optional(
    Type.Boolean({ default: true, description: 'Whether verifications run this provider.' }),
  ),
  baseUrl: Type.Optional(
    nullable(
      Type.String({
        maxLength: 2048,
        description:
          'Where the provider is reached; null or absent for the provider’s public service. Private, loopback and ' +
          'link-local hosts are refused unless the operator allowlists them (SSRF_ALLOWLIST).',
        examples: ['https://api.passport.xyz'],
      }),
    ),
  ),
  apiKey: Type.Optional(
    nullable(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description: 'Stored sealed and never returned. Absent keeps the stored key; null removes it.',
      }),
    ),
  ),
  timeoutMs: Type.Optional(
    Type.Integer({
      minimum: MIN_PROVIDER_TIMEOUT_MS,
      maximum: MAX_PROVIDER_TIMEOUT_MS,
      default: DEFAULT_PROVIDER_TIMEOUT_MS,
      description: 'Each attempt gives up after this long.',
    }),
  ),
  retries: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: MAX_RETRIES,
      default: DEFAULT_PROVIDER_RETRIES,
      description:
        'Further attempts after a 5xx, a 429, a lost connection or a timeout, with exponential backoff.',
    }),
  ),
  cacheTtlSeconds: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: MAX_CACHE_TTL_SECONDS,
      default: DEFAULT_CACHE_TTL_SECONDS,
      description: 'How long a provider’s answer to the same question is reused; 0 turns the cache off.',
    }),
  ),
};

export const WorldIdConfigBody = Type.Object(
  {
    ...common,
    appId: Type.String({
      pattern: '^app_[0-9a-zA-Z_]+$',
      maxLength: 100,
      examples: ['app_staging_0123456789abcdef'],
    }),
    action: Type.String({ minLength: 1, maxLength: 200, examples: ['verify-human'] }),
    mode: Type.Optional(
      Type.Union([Type.Literal('cloud'), Type.Literal('onchain')], {
        default: 'cloud',
        description:
          '`cloud`: the Developer Portal verify API. `onchain`: WorldIDRouter.verifyProof on `chainId`.',
      }),
    ),
    chainId: Type.Optional(Type.Integer({ minimum: 1, examples: [480] })),
    routerAddress: Type.Optional(HexAddress),
    maxRootAgeSeconds: Type.Optional(
      Type.Integer({
        minimum: 3600,
        maximum: 604_800,
        description: 'Cloud verify `max_age`: oldest Merkle root accepted.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PassportConfigBody = Type.Object(
  { ...common, scorerId: Type.String({ minLength: 1, maxLength: 50, examples: ['100'] }) },
  { additionalProperties: false },
);

export const ProofOfHumanityConfigBody = Type.Object(
  {
    ...common,
    chains: Type.Array(
      Type.Object(
        {
          chainId: Type.Integer({ minimum: 1, examples: [1] }),
          address: HexAddress,
          version: Type.Union([Type.Literal('v1'), Type.Literal('v2'), Type.Literal('v2_cross_chain')], {
            description:
              '`v1`: isRegistered. `v2`: isHuman + humanityOf. `v2_cross_chain`: also humanityData.',
          }),
        },
        { additionalProperties: false },
      ),
      {
        minItems: 1,
        maxItems: MAX_POH_CHAINS,
        description: 'Registries to ask, each on its chain (CHAIN_RPC_URLS).',
      },
    ),
  },
  { additionalProperties: false },
);

export const BrightIdConfigBody = Type.Object(
  {
    ...common,
    app: Type.String({
      minLength: 1,
      maxLength: 100,
      description: 'The app key at the node.',
      examples: ['keel'],
    }),
    nodePublicKey: Type.String({
      minLength: 40,
      maxLength: 60,
      description: 'The node’s Ed25519 signing key, base64: verifications signed by another key are refused.',
      examples: ['8pLnqZ1x4jK0m3QyV2wHs9bT5rU6eD7cF1aG2hJ3kL4='],
    }),
    verification: Type.Optional(
      Type.String({
        maxLength: 200,
        description: 'Accept only this verification of the app.',
        examples: ['BrightID'],
      }),
    ),
    includeHash: Type.Optional(
      Type.Boolean({ description: 'Ask for and check the signed verificationHash.' }),
    ),
  },
  { additionalProperties: false },
);

export const ProviderParams = Type.Object({ provider: ProviderName });

export const ProviderConfigSchema = Type.Object(
  {
    provider: ProviderName,
    enabled: Type.Boolean(),
    baseUrl: nullable(Type.String()),
    hasApiKey: Type.Boolean({
      description: 'Whether an API key is stored. The key itself is never returned.',
    }),
    timeoutMs: Type.Integer(),
    retries: Type.Integer(),
    cacheTtlSeconds: Type.Integer(),
    settings: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The provider-specific fields of the request, as stored.',
      examples: [{ scorerId: '100' }],
    }),
    createdAt: iso,
    updatedAt: iso,
  },
  { $id: 'IdentityProviderConfig', title: 'IdentityProviderConfig' },
);

// ── Policy ────────────────────────────────────────────────────────────────────────────────────

const ProviderRule = Type.Object(
  {
    weight: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_WEIGHT, default: 1, examples: [2] })),
    minScore: Type.Optional(
      Type.Number({
        minimum: 0,
        description: 'Passport only: passing needs a score at least this.',
        examples: [20],
      }),
    ),
    required: Type.Optional(
      Type.Boolean({ default: false, description: 'Never verified unless this provider passes.' }),
    ),
    maxEvidenceAgeSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: MAX_EVIDENCE_AGE_SECONDS,
        description: 'Evidence older than this no longer counts; default 30 days.',
        examples: [2_592_000],
      }),
    ),
  },
  { additionalProperties: false },
);

export const PolicyBody = Type.Object(
  {
    providers: Type.Object(
      {
        world_id: Type.Optional(ProviderRule),
        passport: Type.Optional(ProviderRule),
        proof_of_humanity: Type.Optional(ProviderRule),
        brightid: Type.Optional(ProviderRule),
      },
      { additionalProperties: false, description: 'The providers verifications run, and how each counts.' },
    ),
    minSources: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 4, default: 1, description: 'Passing providers needed.' }),
    ),
    minTotalWeight: Type.Optional(
      Type.Number({ minimum: 0, default: 0, description: 'Total weight of passing providers needed.' }),
    ),
    duplicateOutcome: Type.Optional(
      Type.Union([Type.Literal('needs_review'), Type.Literal('not_verified')], {
        default: 'needs_review',
        description:
          'The outcome of a would-be-verified subject whose identifier belongs to another subject.',
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        providers: { world_id: { weight: 2, required: true }, passport: { weight: 1, minScore: 20 } },
        minSources: 1,
        minTotalWeight: 2,
      },
    ],
  },
);

export const PolicySchema = Type.Object(
  {
    providers: Type.Record(
      Type.String(),
      Type.Object({
        weight: Type.Number(),
        minScore: Type.Optional(Type.Number()),
        required: Type.Boolean(),
        maxEvidenceAgeSeconds: Type.Integer(),
      }),
    ),
    minSources: Type.Integer(),
    minTotalWeight: Type.Number(),
    duplicateOutcome: Type.String(),
    isDefault: Type.Boolean({
      description: 'True while the org has set no policy: every enabled provider counts once.',
    }),
    updatedAt: nullable(iso),
  },
  { $id: 'IdentityPolicy', title: 'IdentityPolicy' },
);

// ── Verifications ─────────────────────────────────────────────────────────────────────────────

export const VerifyBody = Type.Object(
  {
    subjectId: Type.Optional(SubjectId),
    account: Type.Optional(
      Type.String({
        maxLength: 170,
        description:
          'A CAIP-10 account (or a bare EVM address, taken as eip155:1) to check, besides the subject’s linked ' +
          'wallets. Without subjectId, the account’s subject is found (linked wallet, known identifier, earlier ' +
          'verification) or created.',
        examples: ['eip155:1:0x2C1E111d7C3adc823B5fA3af3f07EB62831C3c5a'],
      }),
    ),
    worldId: Type.Optional(
      Type.Object(
        {
          proof: Type.String({
            pattern: '^0x[0-9a-fA-F]+$',
            maxLength: MAX_PROOF_LENGTH,
            description: 'ABI-encoded uint256[8], as IDKit returns it.',
          }),
          merkleRoot: HexUint,
          nullifierHash: HexUint,
          verificationLevel: Type.String({ maxLength: 50, examples: ['orb'] }),
          signal: Type.Optional(
            Type.String({
              maxLength: 500,
              description: 'The signal the proof was made for; empty when none.',
              examples: ['0x2C1E111d7C3adc823B5fA3af3f07EB62831C3c5a'],
            }),
          ),
        },
        { additionalProperties: false, description: 'The IDKit result to verify.' },
      ),
    ),
    brightId: Type.Optional(
      Type.Object(
        {
          appUserId: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 200,
              description: 'Defaults to the first EVM address, in lower case.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    providers: Type.Optional(
      Type.Array(ProviderName, {
        minItems: 1,
        uniqueItems: true,
        description: 'Run only these of the policy’s providers.',
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [{ account: 'eip155:1:0x2C1E111d7C3adc823B5fA3af3f07EB62831C3c5a' }],
  },
);

export const EvidenceSchema = Type.Object({
  provider: ProviderName,
  outcome: Type.Union(
    [
      Type.Literal('passed'),
      Type.Literal('failed'),
      Type.Literal('not_found'),
      Type.Literal('error'),
      Type.Literal('timeout'),
      Type.Literal('unavailable'),
      Type.Literal('skipped'),
    ],
    { description: 'What the provider said, in Keel’s terms (docs/identity.md#evidence).' },
  ),
  accepted: Type.Boolean({ description: 'Whether the policy counted it.' }),
  score: nullable(Type.Number()),
  identifier: nullable(Type.String(), {
    description: 'World ID nullifier, PoH humanity id, BrightID appUserId or Passport address.',
  }),
  chainId: nullable(Type.Integer()),
  errorCode: nullable(Type.String({ examples: ['invalid_proof'] })),
  cached: Type.Boolean({
    description: 'Answered from the cache (or carried forward) rather than asked now.',
  }),
  latencyMs: Type.Integer(),
  observedAt: iso,
  providerExpiresAt: nullable(iso),
  detail: Type.Record(Type.String(), Type.Unknown()),
});

export const VerificationSchema = Type.Object(
  {
    id: VerificationId,
    subjectId: SubjectId,
    account: nullable(Type.String()),
    outcome: Outcome,
    duplicate: Type.Boolean(),
    duplicateOf: nullable(SubjectId, {
      description: 'The subject an identifier of this one is already bound to.',
    }),
    reasons: Type.Array(Type.String({ examples: ['required_provider_not_passed:world_id'] })),
    totalWeight: Type.Number(),
    passedProviders: Type.Array(ProviderName),
    evidence: Type.Array(EvidenceSchema),
    expiresAt: nullable(iso, { description: 'When the evidence stops counting and Keel re-verifies.' }),
    expiredAt: nullable(iso),
    supersedes: nullable(VerificationId, { description: 'The expired verdict this one re-verified.' }),
    createdAt: iso,
  },
  { $id: 'IdentityVerification', title: 'IdentityVerification' },
);

export const VerificationParams = Type.Object({ verificationId: VerificationId });

export const VerificationsQuery = Type.Object({
  cursor: Type.Optional(Type.String({ maxLength: 64 })),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE }),
  subjectId: Type.Optional(SubjectId),
  outcome: Type.Optional(Outcome),
});

// ── Analytics ─────────────────────────────────────────────────────────────────────────────────

const Day = Type.String({ format: 'date', examples: ['2026-11-24'] });

export const AnalyticsQuery = Type.Object({
  from: Day,
  to: Type.String({ format: 'date', description: 'Inclusive.', examples: ['2026-11-30'] }),
});

export const AnalyticsSchema = Type.Object(
  {
    from: Day,
    to: Day,
    totals: Type.Object({
      verified: Type.Integer(),
      not_verified: Type.Integer(),
      needs_review: Type.Integer(),
      duplicates: Type.Integer(),
    }),
    byOutcome: Type.Array(
      Type.Object({ day: Day, outcome: Outcome, count: Type.Integer(), duplicates: Type.Integer() }),
    ),
    byProvider: Type.Array(
      Type.Object({
        day: Day,
        provider: ProviderName,
        outcome: Type.String({ examples: ['passed'] }),
        count: Type.Integer(),
        accepted: Type.Integer({ description: 'Of these, how many the policy counted.' }),
      }),
    ),
  },
  { $id: 'IdentityAnalytics', title: 'IdentityAnalytics' },
);
