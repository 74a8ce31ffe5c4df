-- Webhook endpoints, one delivery per (event, endpoint), and every attempt. All keyed by org.
create table webhook_endpoints (
  org_id text not null,
  id text not null,
  url text not null,
  description text not null default '',
  event_types text[] not null default '{}',
  enabled boolean not null default true,
  disabled_reason text,
  ordered boolean not null default false,
  rate_limit_per_second integer,
  -- Signing secrets, sealed under the master key. The previous one keeps signing until it expires.
  secret_sealed text not null,
  previous_secret_sealed text,
  previous_secret_expires_at timestamptz,
  failing_since timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (org_id, id)
);

create table webhook_deliveries (
  org_id text not null,
  id text not null,
  endpoint_id text not null,
  event_id text not null,
  event_type text not null,
  -- The exact body sent on every attempt, so retries are byte-identical.
  body text not null,
  status text not null check (status in ('pending', 'sending', 'succeeded', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null,
  locked_until timestamptz,
  last_response_status integer,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  -- Event order within an endpoint: ordered endpoints are delivered by it.
  sequence bigint generated always as identity,
  primary key (org_id, id),
  unique (org_id, endpoint_id, event_id)
);

create index webhook_deliveries_due on webhook_deliveries (next_attempt_at)
  where status in ('pending', 'sending');
create index webhook_deliveries_endpoint on webhook_deliveries (org_id, endpoint_id, created_at desc);

create table webhook_attempts (
  org_id text not null,
  id text not null,
  delivery_id text not null,
  endpoint_id text not null,
  attempt integer not null,
  started_at timestamptz not null,
  duration_ms integer not null,
  response_status integer,
  response_excerpt text,
  error text,
  primary key (org_id, id)
);

create index webhook_attempts_delivery on webhook_attempts (org_id, delivery_id, attempt);

-- Where each consumer of the event stream has read up to.
create table event_consumers (
  name text primary key,
  -- The opaque cursor of the last event read (null: from the start of the retained stream).
  cursor text,
  updated_at timestamptz not null default now()
);
