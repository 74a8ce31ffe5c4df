-- Identity (docs/identity.md): subjects (one human per org), provider configuration, the org's
-- verdict policy, verification history with its evidence, and the provider identifiers that
-- make one human count once. Every row is keyed by org.

create table identity_subjects (
  org_id text not null,
  id text not null,
  -- The dApp's own id for this human, unique per org when given.
  external_id text,
  metadata jsonb not null default '{}',
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (org_id, id)
);

create unique index identity_subjects_external_id on identity_subjects (org_id, external_id)
  where external_id is not null;

create table identity_provider_configs (
  org_id text not null,
  provider text not null check (provider in ('world_id', 'passport', 'proof_of_humanity', 'brightid')),
  enabled boolean not null,
  base_url text,
  -- The provider API key, sealed under the master key; never returned.
  api_key_sealed text,
  -- Provider-specific settings: app id, action, scorer id, BrightID app and node key, chains.
  settings jsonb not null default '{}',
  timeout_ms integer not null,
  retries integer not null,
  cache_ttl_seconds integer not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (org_id, provider)
);

create table identity_policies (
  org_id text primary key,
  policy jsonb not null,
  updated_at timestamptz not null
);

create table identity_verifications (
  org_id text not null,
  id text not null,
  subject_id text not null,
  -- The CAIP-10 account the verification was asked for, when it was asked by address.
  account text,
  outcome text not null check (outcome in ('verified', 'not_verified', 'needs_review')),
  reasons text[] not null,
  total_weight double precision not null,
  duplicate_of text,
  -- The policy that decided, as it was then, and the inputs a re-verification runs again.
  policy jsonb not null,
  request jsonb not null,
  -- Set when this verdict was made by re-verifying an expired one.
  supersedes text,
  -- When the evidence this verdict rests on is too old or lapses at the provider.
  expires_at timestamptz,
  -- When the re-verification job handled the expiry.
  expired_at timestamptz,
  created_at timestamptz not null,
  primary key (org_id, id)
);

create index identity_verifications_subject on identity_verifications (org_id, subject_id, created_at desc);
create index identity_verifications_account on identity_verifications (org_id, account, created_at desc)
  where account is not null;
create index identity_verifications_due on identity_verifications (expires_at)
  where expired_at is null and expires_at is not null;
create index identity_verifications_created on identity_verifications (org_id, created_at);

create table identity_evidence (
  org_id text not null,
  verification_id text not null,
  provider text not null,
  outcome text not null,
  -- Whether the policy counted it (passed, scored enough, young enough).
  accepted boolean not null,
  score double precision,
  -- The provider's identifier of the human: World ID nullifier, PoH humanityId, BrightID
  -- appUserId, Passport address.
  identifier text,
  chain_id integer,
  error_code text,
  detail jsonb not null default '{}',
  cached boolean not null,
  latency_ms integer not null,
  -- When the provider observed the fact (not when Keel asked), and when the provider says it lapses.
  observed_at timestamptz not null,
  provider_expires_at timestamptz,
  created_at timestamptz not null,
  primary key (org_id, verification_id, provider)
);

create index identity_evidence_created on identity_evidence (org_id, created_at);

-- One row per provider identifier per org, bound to the first subject that presented it.
create table identity_identifiers (
  org_id text not null,
  provider text not null,
  identifier text not null,
  subject_id text not null,
  first_verification_id text not null,
  -- Every chain the identifier was seen on (PoH humanityId, World ID nullifier on-chain).
  chain_ids integer[] not null default '{}',
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (org_id, provider, identifier)
);

create index identity_identifiers_subject on identity_identifiers (org_id, subject_id);
