-- The transactional outbox: every event is written in the same transaction as the change it
-- reports. Rows are keyed by org first so the table shards by org_id.
--
-- Order: a sequence value is taken at insert, but transactions commit in another order, so a
-- reader that followed `position` alone could skip a row committed late with a lower value.
-- Each row also records its transaction id (xid8); readers only read rows whose transaction is
-- older than every transaction still running (pg_snapshot_xmin), in (tx_id, position) order.
-- That order never changes once a row is visible.
create table events (
  org_id text not null,
  id text not null,
  type text not null,
  version integer not null,
  payload jsonb not null,
  tx_id xid8 not null default pg_current_xact_id(),
  position bigint generated always as identity,
  created_at timestamptz not null default now(),
  primary key (org_id, id)
);

create index events_org_order on events (org_id, tx_id, position);
create index events_order on events (tx_id, position);
create index events_created_at on events (created_at);
