-- Single sign-on with OpenID Connect: one identity provider per org, and the logins in flight.

create table sso_connections (
  org_id text primary key references orgs (id) on delete cascade,
  id text not null unique,
  issuer text not null,
  client_id text not null,
  -- Sealed under the master key; never returned by the API.
  client_secret_sealed text not null,
  -- Only people whose verified email is at one of these domains join the org on their first
  -- SSO sign-in: a provider such as Google authenticates anyone, not only the org's people.
  email_domains text[] not null,
  -- The role a person gets when their first SSO sign-in adds them to the org.
  default_role text not null check (default_role in ('admin', 'developer', 'billing', 'viewer')),
  created_by text references users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- An authorization request sent to the IdP and not answered yet. Looked up by the SHA-256 of
-- its state, and deleted when the answer arrives: each state is used once.
create table sso_login_attempts (
  state_hash bytea primary key,
  org_id text not null references orgs (id) on delete cascade,
  code_verifier text not null,
  nonce text not null,
  return_to text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index sso_login_attempts_expiry on sso_login_attempts (expires_at);
