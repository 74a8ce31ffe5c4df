-- Access: users and their sessions, orgs and their members, invitations, API keys.
--
-- Users are global (one person, many orgs); everything an org owns carries org_id first, so
-- those tables shard by org. Secrets (session tokens, invitation tokens, API keys) are stored
-- only as their SHA-256.

create table users (
  id text primary key,
  -- Lower-cased and trimmed by the service; unique across Keel. Null for a user who signed up
  -- with a wallet and has not added one.
  email text,
  email_verified_at timestamptz,
  name text,
  -- argon2id PHC string; null for users who only sign in with SSO or a wallet.
  password_hash text,
  -- Set by the two-factor flow once TOTP is confirmed; non-null means login needs a second factor.
  totp_enabled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index users_email on users (email);

-- External identities that sign a user in: OIDC subjects, wallet addresses.
create table user_identities (
  provider text not null,
  subject text not null,
  user_id text not null references users (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (provider, subject)
);
create index user_identities_user on user_identities (user_id);

create table sessions (
  id text primary key,
  user_id text not null references users (id) on delete cascade,
  token_hash bytea not null,
  -- How the user proved who they are: password, siwe, oidc…
  method text not null,
  ip text,
  user_agent text,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);
create unique index sessions_token_hash on sessions (token_hash);
create index sessions_user on sessions (user_id, id);

-- A login that passed the password and waits for its second factor.
create table mfa_challenges (
  token_hash bytea primary key,
  user_id text not null references users (id) on delete cascade,
  method text not null,
  ip text,
  user_agent text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);

create table orgs (
  id text primary key,
  name text not null,
  -- Requests per minute for the whole org; null: the configured default.
  rate_limit_per_minute integer,
  -- CIDRs that may call the org's admin routes; empty: any address.
  admin_ip_allowlist text[] not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table memberships (
  org_id text not null references orgs (id) on delete cascade,
  user_id text not null references users (id) on delete cascade,
  role text not null check (role in ('owner', 'admin', 'developer', 'billing', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (org_id, user_id)
);
create index memberships_user on memberships (user_id, org_id);

create table invitations (
  org_id text not null references orgs (id) on delete cascade,
  id text not null,
  email text not null,
  role text not null check (role in ('owner', 'admin', 'developer', 'billing', 'viewer')),
  token_hash bytea not null,
  invited_by text references users (id) on delete set null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  accepted_at timestamptz,
  accepted_by text references users (id) on delete set null,
  revoked_at timestamptz,
  primary key (org_id, id)
);
create unique index invitations_token_hash on invitations (token_hash);

create table api_keys (
  org_id text not null references orgs (id) on delete cascade,
  id text not null,
  name text not null,
  environment text not null check (environment in ('live', 'test')),
  scopes text[] not null,
  expires_at timestamptz,
  rate_limit_per_minute integer,
  ip_allowlist text[] not null default '{}',
  metadata jsonb not null default '{}',
  last_used_at timestamptz,
  created_by text references users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  revoked_at timestamptz,
  primary key (org_id, id)
);

-- A key's secrets: one normally, two while a roll's grace period runs. Looked up by hash only
-- when a replica's cache misses.
create table api_key_secrets (
  secret_hash bytea primary key,
  org_id text not null,
  key_id text not null,
  -- The last four characters, so people can tell their keys apart.
  hint text not null,
  created_at timestamptz not null default now(),
  -- Set when the key is rolled: the old secret works until then.
  expires_at timestamptz,
  foreign key (org_id, key_id) references api_keys (org_id, id) on delete cascade
);
create index api_key_secrets_key on api_key_secrets (org_id, key_id);
