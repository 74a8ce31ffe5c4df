-- Sign-in with Ethereum: single-use nonces, and the wallets linked to users.

create table wallet_nonces (
  nonce text primary key,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index wallet_nonces_expiry on wallet_nonces (expires_at);

-- One row per wallet linked to a user, keyed by its CAIP-10 account id (eip155:<chain>:<address>).
-- An EOA is the same key on every chain, so it is also unique by address alone; a contract
-- account exists per chain (its code and owners can differ), so it is unique per chain.
create table user_wallets (
  id text primary key,
  user_id text not null references users (id) on delete cascade,
  account_id text not null,
  chain_id bigint not null,
  -- EIP-55 checksummed.
  address text not null,
  kind text not null check (kind in ('eoa', 'contract')),
  created_at timestamptz not null default now(),
  last_used_at timestamptz not null default now()
);
create unique index user_wallets_account on user_wallets (account_id);
create unique index user_wallets_eoa on user_wallets (address) where kind = 'eoa';
create index user_wallets_user on user_wallets (user_id, id);
