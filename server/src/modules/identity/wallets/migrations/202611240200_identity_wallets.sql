-- Identity wallets (docs/identity.md#wallets): single-use challenges a wallet signs, and the
-- wallets linked to subjects. Keyed by org; a subject's rows go with it.

create table identity_wallet_challenges (
  org_id text not null,
  id text not null,
  subject_id text not null,
  namespace text not null check (namespace in ('eip155', 'solana', 'cosmos')),
  -- The CAIP-10 account the challenge is for, canonical spelling.
  account_id text not null,
  -- The exact text the wallet signs (SIWE, SIWS or the ADR-036 data).
  message text not null,
  nonce text not null,
  issued_at timestamptz not null,
  expires_at timestamptz not null,
  -- Set when a signature used it: a challenge links at most once.
  used_at timestamptz,
  primary key (org_id, id),
  foreign key (org_id, subject_id) references identity_subjects (org_id, id) on delete cascade
);

create index identity_wallet_challenges_expiry on identity_wallet_challenges (expires_at);

create table identity_wallets (
  org_id text not null,
  id text not null,
  subject_id text not null,
  -- CAIP-10: eip155:1:0x… (EIP-55), solana:<genesis>:<base58>, cosmos:<chain id>:<bech32>.
  account_id text not null,
  namespace text not null check (namespace in ('eip155', 'solana', 'cosmos')),
  reference text not null,
  address text not null,
  -- How control was proved: eoa (ecrecover), contract (ERC-1271/6492 on its chain), ed25519
  -- (Solana), secp256k1 (Cosmos ADR-036).
  kind text not null check (kind in ('eoa', 'contract', 'ed25519', 'secp256k1')),
  -- The key behind the account on every chain of its namespace (an EOA address in lower case,
  -- a Solana public key, a Cosmos key hash in hex); null for contract accounts, which are per chain.
  controller text,
  -- Cosmos: the compressed secp256k1 key that signed, base64.
  public_key text,
  challenge_id text not null,
  linked_at timestamptz not null,
  -- Unlinked wallets are kept as history; only linked ones count for uniqueness.
  unlinked_at timestamptz,
  primary key (org_id, id),
  foreign key (org_id, subject_id) references identity_subjects (org_id, id) on delete cascade
);

-- A wallet belongs to one subject per org: by its exact account id, and by the key behind it.
create unique index identity_wallets_account on identity_wallets (org_id, account_id)
  where unlinked_at is null;
create unique index identity_wallets_controller on identity_wallets (org_id, namespace, controller)
  where unlinked_at is null and controller is not null;
create index identity_wallets_subject on identity_wallets (org_id, subject_id, id)
  where unlinked_at is null;
