import { type RawBuilder, sql } from 'kysely';
import type { Db, Tx } from '../../infra/db/database.ts';
import type { Tables } from '../../infra/db/tables.ts';
import type { Aggregation } from './catalogue.ts';
import type { Granularity } from './domain/periods.ts';

/** SQL only. Every function takes the org it reads or writes, and every query is scoped by it. */

type Numeric = string;

interface AggregateRow {
  org_id: string;
  period_start: Date;
  meter: string;
  key_id: string;
  route: string;
  event_count: string;
  value_sum: Numeric;
  value_max: Numeric;
}

declare module '../../infra/db/tables.ts' {
  interface Tables {
    usage_meters: {
      org_id: string;
      name: string;
      aggregation: Aggregation;
      description: string | null;
      unit: string | null;
      created_at: Date;
    };
    usage_events: {
      org_id: string;
      id: string;
      meter: string;
      source: string | null;
      subject: string | null;
      time: Date;
      value: Numeric | null;
      data: unknown;
      key_id: string;
      received_at: Date;
    };
    usage_hourly: AggregateRow;
    usage_daily: AggregateRow;
    usage_period_totals: Omit<AggregateRow, 'key_id' | 'route'>;
    usage_quotas: { org_id: string; meter: string; quota: Numeric; created_at: Date; updated_at: Date };
    usage_threshold_crossings: {
      org_id: string;
      meter: string;
      period_start: Date;
      quota: Numeric;
      threshold: number;
      used: Numeric;
      reached_at: Date;
    };
  }
}

/** What one org used of one meter in one hour, by one key and route: added to the aggregates. */
export interface UsageDelta {
  readonly hourStart: Date;
  readonly meter: string;
  /** The key (`key_…`) or user (`usr_…`) behind the usage; '' when none. */
  readonly keyId: string;
  /** `GET /v1/…` for API requests; '' for meter events. */
  readonly route: string;
  readonly count: number | string;
  readonly sum: Numeric;
  readonly max: Numeric;
  /** The meter's aggregation: which of count, sum and max its quota is checked against. */
  readonly aggregation: Aggregation;
}

export interface Crossing {
  readonly meter: string;
  readonly periodStart: Date;
  readonly quota: Numeric;
  readonly threshold: number;
  readonly used: Numeric;
}

const toCrossing = (row: {
  meter: string;
  period_start: Date;
  quota: Numeric;
  threshold: number;
  used: Numeric;
}) => ({
  meter: row.meter,
  periodStart: row.period_start,
  quota: row.quota,
  threshold: row.threshold,
  used: row.used,
});

const usedOf = (aggregation: RawBuilder<unknown> | ReturnType<typeof sql.lit>, totals: string) =>
  sql`case ${aggregation} when 'count' then ${sql.ref(`${totals}.event_count`)}::numeric
    when 'sum' then ${sql.ref(`${totals}.value_sum`)} else ${sql.ref(`${totals}.value_max`)} end`;

/**
 * Adds one org's deltas to the hourly, daily and monthly aggregates and records the quota
 * thresholds they cross, in one statement. The rows are upserted in a fixed order, so two
 * replicas flushing the same org at once queue on each other's row locks instead of
 * deadlocking. Returns the crossings this statement recorded: a crossing another transaction
 * recorded first is not returned again.
 */
export async function applyDeltas(
  tx: Tx,
  orgId: string,
  deltas: readonly UsageDelta[],
  thresholds: readonly number[],
  now: Date,
): Promise<Crossing[]> {
  const { rows } = await sql<{
    meter: string;
    period_start: Date;
    quota: Numeric;
    threshold: number;
    used: Numeric;
  }>`
    with input as (
      select * from unnest(
        ${deltas.map((delta) => delta.hourStart)}::timestamptz[],
        ${deltas.map((delta) => delta.meter)}::text[],
        ${deltas.map((delta) => delta.keyId)}::text[],
        ${deltas.map((delta) => delta.route)}::text[],
        ${deltas.map((delta) => String(delta.count))}::bigint[],
        ${deltas.map((delta) => delta.sum)}::numeric[],
        ${deltas.map((delta) => delta.max)}::numeric[],
        ${deltas.map((delta) => delta.aggregation)}::text[]
      ) as t(hour, meter, key_id, route, event_count, value_sum, value_max, aggregation)
    ),
    hourly as (
      insert into usage_hourly as u (org_id, period_start, meter, key_id, route, event_count, value_sum, value_max)
      select ${orgId}, hour, meter, key_id, route, sum(event_count), sum(value_sum), max(value_max)
      from input group by hour, meter, key_id, route
      order by hour, meter, key_id, route
      on conflict (org_id, period_start, meter, key_id, route) do update set
        event_count = u.event_count + excluded.event_count,
        value_sum = u.value_sum + excluded.value_sum,
        value_max = greatest(u.value_max, excluded.value_max)
    ),
    daily as (
      insert into usage_daily as u (org_id, period_start, meter, key_id, route, event_count, value_sum, value_max)
      select ${orgId}, date_trunc('day', hour, 'UTC') as day, meter, key_id, route,
        sum(event_count), sum(value_sum), max(value_max)
      from input group by day, meter, key_id, route
      order by day, meter, key_id, route
      on conflict (org_id, period_start, meter, key_id, route) do update set
        event_count = u.event_count + excluded.event_count,
        value_sum = u.value_sum + excluded.value_sum,
        value_max = greatest(u.value_max, excluded.value_max)
    ),
    totals as (
      insert into usage_period_totals as u (org_id, meter, period_start, event_count, value_sum, value_max)
      select ${orgId}, meter, date_trunc('month', hour, 'UTC') as month,
        sum(event_count), sum(value_sum), max(value_max)
      from input group by meter, month
      order by meter, month
      on conflict (org_id, meter, period_start) do update set
        event_count = u.event_count + excluded.event_count,
        value_sum = u.value_sum + excluded.value_sum,
        value_max = greatest(u.value_max, excluded.value_max)
      returning u.meter, u.period_start, u.event_count, u.value_sum, u.value_max
    ),
    usage as (
      select totals.meter, totals.period_start, q.quota, ${usedOf(sql.ref('meters.aggregation'), 'totals')} as used
      from totals
      join (select distinct meter, aggregation from input) meters on meters.meter = totals.meter
      join usage_quotas q on q.org_id = ${orgId} and q.meter = totals.meter
    ),
    crossings as (
      insert into usage_threshold_crossings (org_id, meter, period_start, quota, threshold, used, reached_at)
      select ${orgId}, usage.meter, usage.period_start, usage.quota, threshold, usage.used, ${now}
      from usage join unnest(${thresholds}::smallint[]) as t(threshold)
        on usage.used * 100 >= usage.quota * threshold
      order by usage.meter, usage.period_start, threshold
      on conflict do nothing
      returning meter, period_start, quota, threshold, used
    )
    select meter, period_start, trim_scale(quota)::text as quota, threshold, trim_scale(used)::text as used
    from crossings order by period_start, meter, threshold`.execute(tx);
  return rows.map(toCrossing);
}

export interface NewUsageEvent {
  readonly id: string;
  readonly meter: string;
  readonly source: string | null;
  readonly subject: string | null;
  readonly time: Date;
  readonly value: Numeric | null;
  readonly data: unknown;
  readonly keyId: string;
}

export interface InsertedUsageEvent {
  readonly id: string;
  readonly meter: string;
  readonly time: Date;
  readonly value: Numeric | null;
  readonly keyId: string;
}

/**
 * Inserts the events whose id the org has not sent before; returns the ones inserted. Rows go in
 * id order, so concurrent batches sharing ids wait on each other instead of deadlocking; of an
 * id repeated in one batch, its first occurrence is the one kept.
 */
export async function insertEvents(
  tx: Tx,
  orgId: string,
  events: readonly NewUsageEvent[],
  receivedAt: Date,
): Promise<InsertedUsageEvent[]> {
  const { rows } = await sql<{
    id: string;
    meter: string;
    time: Date;
    value: Numeric | null;
    key_id: string;
  }>`
    insert into usage_events (org_id, id, meter, source, subject, time, value, data, key_id, received_at)
    select ${orgId}, id, meter, source, subject, time, value, data, key_id, ${receivedAt}
    from unnest(
      ${events.map((event) => event.id)}::text[],
      ${events.map((event) => event.meter)}::text[],
      ${events.map((event) => event.source)}::text[],
      ${events.map((event) => event.subject)}::text[],
      ${events.map((event) => event.time)}::timestamptz[],
      ${events.map((event) => event.value)}::numeric[],
      ${events.map((event) => (event.data === undefined ? null : JSON.stringify(event.data)))}::jsonb[],
      ${events.map((event) => event.keyId)}::text[]
    ) with ordinality as t(id, meter, source, subject, time, value, data, key_id, position)
    order by id, position
    on conflict (org_id, id) do nothing
    returning id, meter, time, value::text, key_id`.execute(tx);
  return rows.map((row) => ({
    id: row.id,
    meter: row.meter,
    time: row.time,
    value: row.value,
    keyId: row.key_id,
  }));
}

// ---------------------------------------------------------------------------------------------
// Meters and quotas

export type MeterRow = Tables['usage_meters'];

export async function listMeters(db: Db | Tx, orgId: string): Promise<MeterRow[]> {
  return db.selectFrom('usage_meters').selectAll().where('org_id', '=', orgId).orderBy('name').execute();
}

export async function countMeters(db: Db | Tx, orgId: string): Promise<number> {
  const row = await db
    .selectFrom('usage_meters')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('org_id', '=', orgId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function findMeter(db: Db | Tx, orgId: string, name: string): Promise<MeterRow | undefined> {
  return db
    .selectFrom('usage_meters')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** Inserts the meter unless the org has one by that name; returns the row now stored. */
export async function insertMeter(db: Db | Tx, row: MeterRow): Promise<{ row: MeterRow; created: boolean }> {
  const inserted = await db
    .insertInto('usage_meters')
    .values(row)
    .onConflict((conflict) => conflict.columns(['org_id', 'name']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { row: inserted, created: true };
  return { row: (await findMeter(db, row.org_id, row.name))!, created: false };
}

export type QuotaRow = Tables['usage_quotas'];

export interface QuotaUsageRow extends QuotaRow {
  event_count: string | null;
  value_sum: Numeric | null;
  value_max: Numeric | null;
}

/** The org's quotas with the totals of the period starting at `periodStart`. */
export async function listQuotas(
  db: Db,
  orgId: string,
  periodStart: Date,
  meter?: string,
): Promise<QuotaUsageRow[]> {
  const { rows } = await sql<QuotaUsageRow>`
    select q.org_id, q.meter, trim_scale(q.quota)::text as quota, q.created_at, q.updated_at,
      t.event_count::text as event_count, trim_scale(t.value_sum)::text as value_sum,
      trim_scale(t.value_max)::text as value_max
    from usage_quotas q
    left join usage_period_totals t
      on t.org_id = q.org_id and t.meter = q.meter and t.period_start = ${periodStart}
    where q.org_id = ${orgId} ${meter === undefined ? sql`` : sql`and q.meter = ${meter}`}
    order by q.meter`.execute(db);
  return rows;
}

export async function upsertQuota(
  db: Db | Tx,
  orgId: string,
  meter: string,
  quota: Numeric,
  now: Date,
): Promise<void> {
  await db
    .insertInto('usage_quotas')
    .values({ org_id: orgId, meter, quota, created_at: now, updated_at: now })
    .onConflict((conflict) => conflict.columns(['org_id', 'meter']).doUpdateSet({ quota, updated_at: now }))
    .execute();
}

export async function deleteQuota(db: Db, orgId: string, meter: string): Promise<boolean> {
  const result = await db
    .deleteFrom('usage_quotas')
    .where('org_id', '=', orgId)
    .where('meter', '=', meter)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Records the thresholds the current totals of one meter have reached against the org's quota
 * (for a quota just set); returns the crossings not recorded before.
 */
export async function recordCrossings(
  tx: Tx,
  orgId: string,
  options: {
    meter: string;
    aggregation: Aggregation;
    periodStart: Date;
    thresholds: readonly number[];
    now: Date;
  },
): Promise<Crossing[]> {
  const { rows } = await sql<{
    meter: string;
    period_start: Date;
    quota: Numeric;
    threshold: number;
    used: Numeric;
  }>`
    with usage as (
      select totals.meter, totals.period_start, q.quota,
        ${usedOf(sql.lit(options.aggregation), 'totals')} as used
      from usage_period_totals totals
      join usage_quotas q on q.org_id = totals.org_id and q.meter = totals.meter
      where totals.org_id = ${orgId} and totals.meter = ${options.meter}
        and totals.period_start = ${options.periodStart}
    ),
    crossings as (
      insert into usage_threshold_crossings (org_id, meter, period_start, quota, threshold, used, reached_at)
      select ${orgId}, usage.meter, usage.period_start, usage.quota, threshold, usage.used, ${options.now}
      from usage join unnest(${options.thresholds}::smallint[]) as t(threshold)
        on usage.used * 100 >= usage.quota * threshold
      order by threshold
      on conflict do nothing
      returning meter, period_start, quota, threshold, used
    )
    select meter, period_start, trim_scale(quota)::text as quota, threshold, trim_scale(used)::text as used
    from crossings order by threshold`.execute(tx);
  return rows.map(toCrossing);
}

// ---------------------------------------------------------------------------------------------
// Reading usage

export const GROUP_BY_DIMENSIONS = ['key', 'route'] as const;
export type GroupByDimension = (typeof GROUP_BY_DIMENSIONS)[number];

export interface UsageRow {
  period_start: Date;
  meter: string;
  key_id?: string;
  route?: string;
  event_count: string;
  value_sum: Numeric;
  value_max: Numeric;
}

const DIMENSION_COLUMN: Record<GroupByDimension, 'key_id' | 'route'> = { key: 'key_id', route: 'route' };

/** Usage per period and meter (and per key or route when asked), at most `limit` rows. */
export async function readUsage(
  db: Db,
  orgId: string,
  query: {
    granularity: Granularity;
    from: Date;
    to: Date;
    meters?: readonly string[];
    groupBy: readonly GroupByDimension[];
    limit: number;
  },
): Promise<UsageRow[]> {
  const table = sql.table(query.granularity === 'hour' ? 'usage_hourly' : 'usage_daily');
  const columns = [
    sql.ref('period_start'),
    sql.ref('meter'),
    ...query.groupBy.map((d) => sql.ref(DIMENSION_COLUMN[d])),
  ];
  const meterFilter =
    query.meters && query.meters.length > 0 ? sql`and meter = any(${query.meters}::text[])` : sql``;
  const { rows } = await sql<UsageRow>`
    select ${sql.join(columns)}, sum(event_count)::text as event_count,
      trim_scale(sum(value_sum))::text as value_sum, trim_scale(max(value_max))::text as value_max
    from ${table}
    where org_id = ${orgId} and period_start >= ${query.from} and period_start < ${query.to} ${meterFilter}
    group by ${sql.join(columns)}
    order by ${sql.join(columns)}
    limit ${query.limit}`.execute(db);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Retention

const prunable = {
  usage_events: 'received_at',
  usage_hourly: 'period_start',
  usage_daily: 'period_start',
  usage_period_totals: 'period_start',
  usage_threshold_crossings: 'period_start',
} as const;
const primaryKeys: Record<keyof typeof prunable, readonly string[]> = {
  usage_events: ['org_id', 'id'],
  usage_hourly: ['org_id', 'period_start', 'meter', 'key_id', 'route'],
  usage_daily: ['org_id', 'period_start', 'meter', 'key_id', 'route'],
  usage_period_totals: ['org_id', 'meter', 'period_start'],
  usage_threshold_crossings: ['org_id', 'meter', 'period_start', 'quota', 'threshold'],
};

/** Deletes up to `limit` rows of `table` older than `before`; returns how many went. */
export async function deleteBefore(
  db: Db,
  table: keyof typeof prunable,
  before: Date,
  limit: number,
): Promise<number> {
  const key = primaryKeys[table].map((column) => sql.ref(column));
  const result = await sql`
    delete from ${sql.table(table)} where (${sql.join(key)}) in (
      select ${sql.join(key)} from ${sql.table(table)} where ${sql.ref(prunable[table])} < ${before} limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

export type PrunableTable = keyof typeof prunable;
