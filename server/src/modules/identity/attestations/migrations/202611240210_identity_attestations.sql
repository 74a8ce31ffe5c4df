-- On-chain attestations (docs/identity.md#attestations): the contracts `keel contracts deploy`
-- recorded, each org's signer key, attestations per verification and chain, and the transactions
-- that write and revoke them.

-- One row per contract Keel deployed on a chain; deployment-wide, not per org.
create table chain_contracts (
  chain_id bigint not null,
  name text not null,
  address text not null,
  tx_hash text not null,
  deployer text not null,
  deployed_at timestamptz not null,
  primary key (chain_id, name)
);

-- The EVM key an org attests with, generated on first use. The private key is sealed under the
-- master key (context `identity.attestation-signer:<org id>`) and never returned.
create table identity_attestation_signers (
  org_id text primary key,
  address text not null,
  private_key_sealed text not null,
  created_at timestamptz not null
);

create table identity_attestations (
  org_id text not null,
  id text not null,
  verification_id text not null,
  subject_id text not null,
  chain_id bigint not null,
  registry_address text not null,
  attester text not null,
  -- keccak256 of the domain tag, the salt and the ids (docs/identity.md#commitments): the only
  -- value that goes on chain. The salt stays here so the org can hand the holder the opening.
  commitment text not null,
  salt text not null,
  -- The on-chain expiry: the verdict's, or null when it has none.
  expires_at timestamptz,
  status text not null check (status in ('pending', 'confirmed', 'revoking', 'revoked', 'expired', 'failed')),
  created_at timestamptz not null,
  updated_at timestamptz not null,
  confirmed_at timestamptz,
  revoked_at timestamptz,
  primary key (org_id, id)
);

create unique index identity_attestations_chain on identity_attestations (org_id, verification_id, chain_id);

-- One transaction per attestation and kind. It is signed and stored before it is broadcast, so a
-- crash or a reorg never loses it: the tracker rebroadcasts the same bytes, or signs it again.
create table identity_attestation_txs (
  org_id text not null,
  id text not null,
  attestation_id text not null,
  chain_id bigint not null,
  kind text not null check (kind in ('attest', 'revoke')),
  status text not null check (status in ('queued', 'sent', 'confirmed', 'failed', 'cancelled')),
  tx_hash text,
  raw_tx text,
  nonce bigint,
  -- The block the receipt was last seen in; cleared when a reorg drops it.
  block_number bigint,
  block_hash text,
  confirmations integer not null default 0,
  broadcasts integer not null default 0,
  signings integer not null default 0,
  reorgs integer not null default 0,
  -- Consecutive failed attempts to reach the chain or sign; drives the back-off.
  failures integer not null default 0,
  last_error text,
  next_check_at timestamptz not null,
  lease_until timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  confirmed_at timestamptz,
  primary key (org_id, id),
  foreign key (org_id, attestation_id) references identity_attestations (org_id, id) on delete cascade
);

create unique index identity_attestation_txs_kind on identity_attestation_txs (org_id, attestation_id, kind);
create index identity_attestation_txs_due on identity_attestation_txs (next_check_at)
  where status in ('queued', 'sent');
