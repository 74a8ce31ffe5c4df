-- Responses to mutating requests sent with an Idempotency-Key, replayed when the same request
-- is retried. Keyed by org first so the table shards by org_id.
create table idempotency_keys (
  org_id text not null,
  key text not null,
  method text not null,
  route text not null,
  request_hash text not null,
  status text not null check (status in ('in_progress', 'completed')),
  response_status integer,
  response_headers jsonb,
  response_body text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (org_id, key)
);

create index idempotency_keys_expires_at on idempotency_keys (expires_at);
