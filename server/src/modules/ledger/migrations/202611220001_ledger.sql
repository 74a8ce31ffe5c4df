-- The ledger: assets, accounts with their running balances, and transfers, which are the
-- journal. Every table is keyed by org_id first so that it shards by org (Citus), and no query
-- ever spans two orgs.

-- An asset is a unit of account of one org: a code and the number of decimal places of its
-- minor unit (USD/2, ETH/18, USDC/6). Amounts are integers of minor units.
create table ledger_assets (
  org_id text not null,
  code text not null,
  scale smallint not null check (scale between 0 and 36),
  description text,
  created_at timestamptz not null,
  primary key (org_id, code)
);

-- Balances are numeric without a precision limit: amounts are bounded to uint256 by the API,
-- and a sum of them can never overflow. The fill factor leaves room on each page so that the
-- balance update of every batch is a HOT update (no index is touched).
create table ledger_accounts (
  org_id text not null,
  id text not null,
  asset text not null,
  name text not null,
  code text,
  metadata jsonb,
  debits_must_not_exceed_credits boolean not null default false,
  credits_must_not_exceed_debits boolean not null default false,
  overdraft_limit numeric(78, 0) check (overdraft_limit >= 0),
  debits_posted numeric not null default 0,
  credits_posted numeric not null default 0,
  debits_pending numeric not null default 0,
  credits_pending numeric not null default 0,
  created_at timestamptz not null,
  primary key (org_id, id),
  foreign key (org_id, asset) references ledger_assets (org_id, code),
  check (not (debits_must_not_exceed_credits and credits_must_not_exceed_debits)),
  check (debits_posted >= 0 and credits_posted >= 0 and debits_pending >= 0 and credits_pending >= 0)
) with (fillfactor = 70);

-- Transfers are the entries of the ledger, as in TigerBeetle: each row debits one account and
-- credits another by the same amount, so every row is a balanced double entry on its own.
-- `kind` says how the row moves balances:
--   posted, reversal   posted += amount on both sides
--   pending            pending += amount on both sides (a hold)
--   post               pending -= pending_amount, posted += amount (amount <= pending_amount)
--   void, expire       pending -= pending_amount
-- Rows are never updated or deleted (see the trigger below); a correction is a reversal.
create table ledger_transfers (
  org_id text not null,
  id text not null,
  kind text not null check (kind in ('posted', 'reversal', 'pending', 'post', 'void', 'expire')),
  debit_account_id text not null,
  credit_account_id text not null,
  asset text not null,
  amount numeric(78, 0) not null check (amount >= 0),
  pending_id text,
  pending_amount numeric(78, 0),
  reverses_id text,
  transaction_id text,
  timeout_at timestamptz,
  code text,
  reference text,
  metadata jsonb,
  created_at timestamptz not null,
  primary key (org_id, id),
  check (debit_account_id <> credit_account_id),
  check ((kind in ('post', 'void', 'expire')) = (pending_id is not null and pending_amount is not null)),
  check ((kind = 'reversal') = (reverses_id is not null))
);

-- Account history, point-in-time balances and snapshots read one side at a time.
create index ledger_transfers_debit on ledger_transfers (org_id, debit_account_id, created_at);
create index ledger_transfers_credit on ledger_transfers (org_id, credit_account_id, created_at);
-- An external reference names at most one transfer per org.
create unique index ledger_transfers_reference on ledger_transfers (org_id, reference)
  where reference is not null;
-- A pending transfer is resolved (posted, voided or expired) at most once, whatever the race.
create unique index ledger_transfers_resolution on ledger_transfers (org_id, pending_id)
  where pending_id is not null;
create index ledger_transfers_reverses on ledger_transfers (org_id, reverses_id)
  where reverses_id is not null;
create index ledger_transfers_transaction on ledger_transfers (org_id, transaction_id)
  where transaction_id is not null;

-- Open holds: one row per pending transfer not yet resolved. It is working state, not history
-- (the history is the pending transfer and its resolution), so it is the one ledger table rows
-- are deleted from. The expiry job scans it by expires_at.
create table ledger_holds (
  org_id text not null,
  transfer_id text not null,
  expires_at timestamptz,
  primary key (org_id, transfer_id)
);

create index ledger_holds_expiry on ledger_holds (expires_at) where expires_at is not null;

-- An account's balance at `as_of`, written by the snapshot job once no transaction that could
-- still commit an earlier transfer is running. A balance at time t is the latest snapshot at or
-- before t plus the transfers between the two.
create table ledger_balance_snapshots (
  org_id text not null,
  account_id text not null,
  as_of timestamptz not null,
  debits_posted numeric not null,
  credits_posted numeric not null,
  debits_pending numeric not null,
  credits_pending numeric not null,
  primary key (org_id, account_id, as_of)
);

-- Immutability, enforced by the database whatever the code above it does: the journal and the
-- snapshots only ever grow.
create function ledger_reject_change() returns trigger language plpgsql as $$
begin
  raise exception 'ledger: % on % is not allowed; the ledger is append-only, correct it with a reversal',
    tg_op, tg_table_name using errcode = 'integrity_constraint_violation';
end
$$;

create trigger ledger_transfers_immutable before update or delete on ledger_transfers
  for each row execute function ledger_reject_change();
create trigger ledger_transfers_no_truncate before truncate on ledger_transfers
  for each statement execute function ledger_reject_change();
create trigger ledger_balance_snapshots_immutable before update or delete on ledger_balance_snapshots
  for each row execute function ledger_reject_change();
create trigger ledger_balance_snapshots_no_truncate before truncate on ledger_balance_snapshots
  for each statement execute function ledger_reject_change();
