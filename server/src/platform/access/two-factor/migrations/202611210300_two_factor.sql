-- TOTP second factor: one authenticator per user, its recovery codes, and each org's policy.

-- The TOTP secret is sealed under the master key (it must be read back to check codes).
-- A row with confirmed_at null is an enrolment waiting for its first code.
create table totp_credentials (
  user_id text primary key references users (id) on delete cascade,
  secret_sealed text not null,
  confirmed_at timestamptz,
  -- The RFC 6238 time step of the last accepted code: codes at or before it are replays.
  last_used_step bigint,
  created_at timestamptz not null default now()
);

-- Single-use codes for when the authenticator is lost; stored as SHA-256 only.
create table recovery_codes (
  user_id text not null references users (id) on delete cascade,
  code_hash bytea not null,
  used_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (user_id, code_hash)
);

-- Per org: whether owners and admins must have 2FA to act on the org's routes.
create table org_two_factor_policies (
  org_id text primary key references orgs (id) on delete cascade,
  require_for_admins boolean not null default false,
  updated_by text references users (id) on delete set null,
  updated_at timestamptz not null default now()
);
