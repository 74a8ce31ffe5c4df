-- Usage metering (docs/usage.md). Every table is keyed by org_id first, so each shards by org.
-- Columns that do not apply to a row (the key of an in-process measurement, the route of a meter
-- event) hold '' rather than null, so they can be part of the primary keys the upserts target.

-- Meters an org defines for its own events. Keel's built-in meters (api_requests, and the ones
-- other modules declare in code) live in the code's catalogue, not here.
create table usage_meters (
  org_id text not null,
  name text not null,
  aggregation text not null check (aggregation in ('sum', 'count', 'max')),
  description text,
  unit text,
  created_at timestamptz not null default now(),
  primary key (org_id, name)
);

-- Meter events as received. The primary key makes ingestion idempotent by event id; rows are
-- pruned after the retention window (usage_events_received_at serves the pruning job).
create table usage_events (
  org_id text not null,
  id text not null,
  meter text not null,
  source text,
  subject text,
  time timestamptz not null,
  value numeric,
  data jsonb,
  key_id text not null,
  received_at timestamptz not null default now(),
  primary key (org_id, id)
);
create index usage_events_received_at on usage_events (received_at);

-- Aggregates per UTC hour and per UTC day of every meter (API requests included), by the key
-- that made the requests or sent the events and, for requests, the route. event_count,
-- value_sum and value_max serve the count, sum and max aggregations. Flushes add to these rows;
-- updates touch no indexed column, so they can stay heap-only.
create table usage_hourly (
  org_id text not null,
  period_start timestamptz not null,
  meter text not null,
  key_id text not null,
  route text not null,
  event_count bigint not null,
  value_sum numeric not null,
  value_max numeric not null,
  primary key (org_id, period_start, meter, key_id, route)
);
create index usage_hourly_period_start on usage_hourly (period_start);

create table usage_daily (
  org_id text not null,
  period_start timestamptz not null,
  meter text not null,
  key_id text not null,
  route text not null,
  event_count bigint not null,
  value_sum numeric not null,
  value_max numeric not null,
  primary key (org_id, period_start, meter, key_id, route)
);
create index usage_daily_period_start on usage_daily (period_start);

-- One row per org, meter and UTC month: what quotas are checked against, without summing the
-- hourly rows on every flush.
create table usage_period_totals (
  org_id text not null,
  meter text not null,
  period_start timestamptz not null,
  event_count bigint not null,
  value_sum numeric not null,
  value_max numeric not null,
  primary key (org_id, meter, period_start)
);
create index usage_period_totals_period_start on usage_period_totals (period_start);

create table usage_quotas (
  org_id text not null,
  meter text not null,
  quota numeric not null check (quota > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (org_id, meter)
);

-- A threshold of a quota reached in a period. The primary key is what makes
-- usage.threshold_reached go out once per threshold, quota and period, however many replicas
-- flush at the same moment: only the transaction whose insert wins emits the event.
create table usage_threshold_crossings (
  org_id text not null,
  meter text not null,
  period_start timestamptz not null,
  quota numeric not null,
  threshold smallint not null,
  used numeric not null,
  reached_at timestamptz not null,
  primary key (org_id, meter, period_start, quota, threshold)
);
create index usage_threshold_crossings_period_start on usage_threshold_crossings (period_start);
