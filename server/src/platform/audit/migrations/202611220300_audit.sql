-- The audit log (docs/audit.md): one hash chain per org. Every table is keyed by org_id first,
-- so the log shards by org.

-- The head of each org's chain: the seq and hash the next entry follows. An append locks this row
-- (select ... for update) in the transaction that writes the entry, which serialises appends per
-- org across every replica while leaving other orgs free.
create table audit_heads (
  org_id text primary key,
  seq bigint not null check (seq >= 0),
  hash text not null
);

-- The chained entries. The hash covers the canonical JSON (RFC 8785) of a payload rebuilt from
-- these columns, prev_hash included, so changing any column breaks verification at that seq.
create table audit_entries (
  org_id text not null,
  seq bigint not null check (seq > 0),
  payload_version smallint not null,
  occurred_at timestamptz not null,
  actor_kind text not null check (actor_kind in ('user', 'api_key', 'system', 'anonymous')),
  actor_id text,
  action text not null,
  target jsonb,
  outcome text not null check (outcome in ('success', 'failure')),
  status integer,
  request_id text,
  details jsonb,
  personal_data_digest text,
  prev_hash text not null,
  hash text not null,
  primary key (org_id, seq)
);

create index audit_entries_actor on audit_entries (org_id, actor_id, seq);
create index audit_entries_action on audit_entries (org_id, action, seq);
create index audit_entries_occurred_at on audit_entries (org_id, occurred_at);

-- Personal data lives outside the hashed payload: erasing it (GDPR) overwrites this row and never
-- breaks the chain. The entry commits only to a salted digest of it.
create table audit_personal_data (
  org_id text not null,
  seq bigint not null,
  salt text,
  ip text,
  user_agent text,
  actor_email text,
  erased_at timestamptz,
  primary key (org_id, seq),
  foreign key (org_id, seq) references audit_entries (org_id, seq) on delete cascade
);

-- One Ed25519 key pair per org; the private key is sealed under the master key (AES-256-GCM).
create table audit_signing_keys (
  org_id text not null,
  id text not null,
  algorithm text not null check (algorithm = 'Ed25519'),
  public_key_pem text not null,
  sealed_private_key text not null,
  created_at timestamptz not null,
  primary key (org_id, id),
  unique (org_id)
);

-- Signed chain heads. Retention prunes entries only below a checkpoint.
create table audit_checkpoints (
  org_id text not null,
  seq bigint not null check (seq > 0),
  id text not null,
  hash text not null,
  created_at timestamptz not null,
  key_id text not null,
  signature text not null,
  primary key (org_id, seq),
  unique (org_id, id),
  foreign key (org_id, key_id) references audit_signing_keys (org_id, id)
);

-- Entries are append-only. The one exception is retention: a transaction that has run
-- `set local keel.audit_prune = 'on'` may delete entries strictly below the org's latest
-- checkpoint. This guards against bugs and careless SQL; a superuser can still bypass triggers,
-- which is what the hash chain and the signed checkpoints are there to detect.
create function audit_entries_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    if coalesce(current_setting('keel.audit_prune', true), '') <> 'on' then
      raise exception 'audit entries are append-only: only the retention job may delete them'
        using errcode = 'insufficient_privilege';
    end if;
    if old.seq >= coalesce((select max(seq) from audit_checkpoints where org_id = old.org_id), 0) then
      raise exception 'audit entry % of org % is not below the latest checkpoint', old.seq, old.org_id
        using errcode = 'insufficient_privilege';
    end if;
    return old;
  end if;
  raise exception 'audit entries are append-only: % is not allowed', tg_op
    using errcode = 'insufficient_privilege';
end;
$$;

create trigger audit_entries_append_only
  before update or delete on audit_entries
  for each row execute function audit_entries_guard();

create function audit_immutable_guard() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
    using errcode = 'insufficient_privilege';
end;
$$;

create trigger audit_entries_no_truncate
  before truncate on audit_entries
  for each statement execute function audit_immutable_guard();

create trigger audit_checkpoints_append_only
  before update or delete on audit_checkpoints
  for each row execute function audit_immutable_guard();

create trigger audit_checkpoints_no_truncate
  before truncate on audit_checkpoints
  for each statement execute function audit_immutable_guard();

create trigger audit_signing_keys_append_only
  before update or delete on audit_signing_keys
  for each row execute function audit_immutable_guard();

create trigger audit_signing_keys_no_truncate
  before truncate on audit_signing_keys
  for each statement execute function audit_immutable_guard();
