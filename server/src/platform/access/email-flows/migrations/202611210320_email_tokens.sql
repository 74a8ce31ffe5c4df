-- Email verification and password reset: single-use tokens, mailed as links, stored as SHA-256.
create table email_tokens (
  token_hash bytea primary key,
  user_id text not null references users (id) on delete cascade,
  purpose text not null check (purpose in ('verify_email', 'reset_password')),
  -- The address the link was mailed to: it proves that address, and stops working if it changes.
  email text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index email_tokens_user on email_tokens (user_id, purpose);
create index email_tokens_expiry on email_tokens (expires_at);
