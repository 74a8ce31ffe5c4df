import type client from 'prom-client';
import type { Clock } from '../../infra/clock.ts';
import type { Database } from '../../infra/db/database.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { EventsService, NewEvent } from '../events/index.ts';
import { type Counter, createUsageAggregator, type UsageAggregator } from './aggregator.ts';
import {
  type Aggregation,
  API_REQUESTS,
  builtInMeter,
  builtInMeters,
  type MeterDefinition,
} from './catalogue.ts';
import {
  bucketStart,
  DAY_MS,
  type Granularity,
  HOUR_MS,
  monthStart,
  nextMonthStart,
} from './domain/periods.ts';
import { meterValue } from './domain/values.ts';
import { QUOTA_THRESHOLDS_PERCENT, USAGE_THRESHOLD_REACHED } from './events.ts';
import {
  applyDeltas,
  type Crossing,
  countMeters,
  deleteBefore,
  deleteQuota,
  type GroupByDimension,
  insertEvents,
  insertMeter,
  listMeters,
  listQuotas,
  type MeterRow,
  type NewUsageEvent,
  type PrunableTable,
  type QuotaUsageRow,
  readUsage,
  recordCrossings,
  upsertQuota,
} from './store.ts';

/** Events one ingestion call takes; larger batches are refused whole. */
export const MAX_EVENTS_PER_BATCH = 1_000;
/** An event may arrive this late (its `time` this far in the past) and still be counted. */
export const MAX_EVENT_AGE_MS = 7 * DAY_MS;
/** An event's `time` may be this far ahead of Keel's clock (the sender's clock may run fast). */
export const MAX_EVENT_CLOCK_SKEW_MS = 5 * 60 * 1000;
/**
 * Raw events are kept this long after they arrive. It exceeds the late-arrival window, so a
 * retry of an event is always either recognised as a duplicate or refused as too old: an event
 * id is never counted twice.
 */
export const EVENT_RETENTION_MS = 35 * DAY_MS;
/** Hourly aggregates are kept about three months, daily ones (and monthly totals) about two years. */
export const HOURLY_RETENTION_MS = 93 * DAY_MS;
export const DAILY_RETENTION_MS = 800 * DAY_MS;
/** Widest range one usage query may read: a month of hours, or a year of days. */
export const MAX_RANGE_MS: Readonly<Record<Granularity, number>> = { hour: 31 * DAY_MS, day: 366 * DAY_MS };
/** Range read when a query gives no `from`: a day of hours, or thirty days. */
export const DEFAULT_RANGE_MS: Readonly<Record<Granularity, number>> = { hour: DAY_MS, day: 30 * DAY_MS };
/** Rows one usage query may return; a wider query is refused with a hint to narrow it. */
export const MAX_USAGE_ROWS = 10_000;
export const MAX_METERS_PER_ORG = 100;
/** Rows deleted per statement by the retention job. */
export const PRUNE_BATCH_SIZE = 5_000;

if (EVENT_RETENTION_MS <= MAX_EVENT_AGE_MS + MAX_EVENT_CLOCK_SKEW_MS) {
  throw new Error(
    'EVENT_RETENTION_MS must exceed the late-arrival window, or a retried event could count twice',
  );
}

export type Failure =
  | { readonly ok: false; readonly code: 'METER_NOT_FOUND' | 'NOT_FOUND'; readonly detail: string }
  | { readonly ok: false; readonly code: 'METER_EXISTS' | 'TOO_MANY_METERS'; readonly detail: string }
  | { readonly ok: false; readonly code: 'USAGE_QUERY_TOO_LARGE'; readonly detail: string }
  | {
      readonly ok: false;
      readonly code: 'VALIDATION_FAILED';
      readonly detail: string;
      readonly errors: readonly InputError[];
    };
export type Result<T> = { readonly ok: true; readonly value: T } | Failure;

/** A bad input field: for events, `index` is the event's position in the batch. */
export interface InputError {
  readonly index?: number;
  /** JSON Pointer inside the event (`/type`, `/data/value`) or the query (`/from`). */
  readonly path: string;
  readonly message: string;
}

/** A meter event, with CloudEvents 1.0 attribute names; `type` names the meter. */
export interface MeterEventInput {
  readonly id: string;
  readonly type: string;
  readonly source?: string;
  readonly subject?: string;
  /** When the usage happened; default: now. */
  readonly time?: string | Date;
  readonly data?: { readonly value?: number | string; readonly [field: string]: unknown };
}

export interface RecordedEvents {
  /** One per input event, in order: `duplicate` when the org had sent the id before. */
  readonly results: readonly { readonly id: string; readonly status: 'accepted' | 'duplicate' }[];
  readonly accepted: number;
  readonly duplicates: number;
}

export interface Meter {
  readonly name: string;
  readonly aggregation: Aggregation;
  readonly description: string | null;
  readonly unit: string | null;
  readonly builtIn: boolean;
  readonly createdAt: Date | null;
}

export interface UsageQuery {
  readonly granularity: Granularity;
  readonly from?: Date;
  readonly to?: Date;
  readonly meters?: readonly string[];
  readonly groupBy?: readonly GroupByDimension[];
}

export interface UsagePoint {
  readonly periodStart: Date;
  readonly meter: string;
  /** The meter's aggregate over the period: its count, sum or max. */
  readonly value: string;
  /** Events (requests, for api_requests) in the period. */
  readonly count: string;
  /** With groupBy key: the API key behind the usage, or null (a signed-in user, or in-process). */
  readonly keyId?: string | null;
  /** With groupBy key: the signed-in user behind the usage (dashboard sessions), else null. */
  readonly userId?: string | null;
  /** With groupBy route: `GET /v1/…` for api_requests, null for meter events. */
  readonly route?: string | null;
}

export interface UsageReport {
  readonly granularity: Granularity;
  readonly from: Date;
  readonly to: Date;
  readonly data: readonly UsagePoint[];
}

export interface Quota {
  readonly meter: string;
  readonly quota: string;
  readonly used: string;
  readonly periodStart: Date;
  readonly periodEnd: Date;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface MeteringService {
  /**
   * Counts one authenticated request, in memory: flushed within FLUSH_INTERVAL_MS. `principalId`
   * is the API key (`key_…`) or the signed-in user (`usr_…`); `route` is `METHOD /pattern`.
   */
  countRequest(orgId: string, principalId: string, route: string): void;
  /**
   * Adds `value` (a non-negative integer) to a built-in meter in memory, aggregated and flushed
   * like request counts: for high-rate in-process usage (the gateway's compute units) where a
   * database write per call would cost too much. Not idempotent; the crash window applies.
   */
  accumulate(orgId: string, meter: string, value: number, options?: { keyId?: string; route?: string }): void;
  /**
   * Records meter events durably and idempotently by id (a duplicate is reported, never counted
   * twice) and updates the aggregates in the same transaction. In-process callers may use
   * built-in meters; the HTTP API passes `builtInMeters: false`.
   */
  recordMeterEvents(
    orgId: string,
    events: readonly MeterEventInput[],
    options?: { keyId?: string; builtInMeters?: boolean },
  ): Promise<Result<RecordedEvents>>;
  createMeter(
    orgId: string,
    input: { name: string; aggregation: Aggregation; description?: string; unit?: string },
  ): Promise<Result<{ meter: Meter; created: boolean }>>;
  listMeters(orgId: string): Promise<Meter[]>;
  usage(orgId: string, query: UsageQuery): Promise<Result<UsageReport>>;
  setQuota(orgId: string, meter: string, quota: string): Promise<Result<Quota>>;
  listQuotas(orgId: string): Promise<Quota[]>;
  deleteQuota(orgId: string, meter: string): Promise<Result<void>>;
  /** Writes the request counts and accumulated usage held in memory now. */
  flush(): Promise<void>;
  /** Deletes raw events and aggregates past their retention; returns rows deleted per table. */
  prune(): Promise<Record<PrunableTable, number>>;
  /** Flushes everything held in memory (graceful shutdown). */
  close(): Promise<void>;
}

const presentBuiltIn = (meter: MeterDefinition): Meter => ({
  name: meter.name,
  aggregation: meter.aggregation,
  description: meter.description,
  unit: meter.unit ?? null,
  builtIn: true,
  createdAt: null,
});

const presentMeter = (row: MeterRow): Meter => ({
  name: row.name,
  aggregation: row.aggregation,
  description: row.description,
  unit: row.unit,
  builtIn: false,
  createdAt: row.created_at,
});

const usedOf = (aggregation: Aggregation, totals: { count: string; sum: string; max: string }) =>
  aggregation === 'count' ? totals.count : aggregation === 'sum' ? totals.sum : totals.max;

const thresholdEvent = (crossing: Crossing): NewEvent => ({
  type: USAGE_THRESHOLD_REACHED.type,
  payload: {
    meter: crossing.meter,
    quota: crossing.quota,
    used: crossing.used,
    threshold: crossing.threshold as 80 | 100,
    periodStart: crossing.periodStart.toISOString(),
  },
});

const toDelta = (counter: Counter) => ({
  hourStart: new Date(counter.hourMs),
  meter: counter.meter,
  keyId: counter.keyId,
  route: counter.route,
  count: counter.count,
  sum: String(counter.sum),
  max: String(counter.max),
  aggregation: counter.aggregation,
});

export function createMeteringService(deps: {
  database: Database;
  clock: Clock;
  log: Logger;
  events: Pick<EventsService, 'emit'>;
  registry: client.Registry;
  flushIntervalMs?: number;
}): MeteringService {
  const { database, clock, log, events } = deps;
  const { db } = database;
  const thresholds = [...QUOTA_THRESHOLDS_PERCENT];

  const aggregator: UsageAggregator = createUsageAggregator({
    clock,
    log,
    registry: deps.registry,
    intervalMs: deps.flushIntervalMs,
    sink: (orgId, counters) =>
      database.transaction(async (tx) => {
        const crossings = await applyDeltas(tx, orgId, counters.map(toDelta), thresholds, clock.now());
        if (crossings.length > 0) await events.emit(tx, orgId, crossings.map(thresholdEvent));
      }),
  });

  /** The org's meters by name, built-in ones included unless the caller may not use them. */
  const metersOf = async (orgId: string, includeBuiltIn: boolean): Promise<Map<string, Meter>> => {
    const meters = new Map<string, Meter>();
    if (includeBuiltIn) for (const meter of builtInMeters()) meters.set(meter.name, presentBuiltIn(meter));
    for (const row of await listMeters(db, orgId)) meters.set(row.name, presentMeter(row));
    return meters;
  };

  const meterNotFound = (name: string): Failure => ({
    ok: false,
    code: 'METER_NOT_FOUND',
    detail: `No meter ${name}: define it with POST /v1/usage/meters`,
  });

  const quotaOf = (row: QuotaUsageRow, aggregation: Aggregation, periodStart: Date): Quota => ({
    meter: row.meter,
    quota: row.quota,
    used: usedOf(aggregation, {
      count: row.event_count ?? '0',
      sum: row.value_sum ?? '0',
      max: row.value_max ?? '0',
    }),
    periodStart,
    periodEnd: nextMonthStart(periodStart),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });

  return {
    countRequest(orgId, principalId, route) {
      aggregator.add(orgId, API_REQUESTS.name, 'count', principalId, route, 1);
    },

    accumulate(orgId, meter, value, options = {}) {
      const definition = builtInMeter(meter);
      if (!definition)
        throw new Error(`accumulate takes a built-in meter (defineMeter); ${meter} is not one`);
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new Error(`accumulate takes a non-negative safe integer, got ${value}`);
      }
      aggregator.add(orgId, meter, definition.aggregation, options.keyId ?? '', options.route ?? '', value);
    },

    async recordMeterEvents(orgId, input, options = {}) {
      if (input.length > MAX_EVENTS_PER_BATCH)
        throw new Error(`at most ${MAX_EVENTS_PER_BATCH} events per call`);
      if (input.length === 0) return { ok: true, value: { results: [], accepted: 0, duplicates: 0 } };
      const meters = await metersOf(orgId, options.builtInMeters ?? true);
      const now = clock.now();
      const errors: InputError[] = [];
      const rows: NewUsageEvent[] = [];
      const aggregations = new Map<string, Aggregation>();
      for (const [index, event] of input.entries()) {
        const fail = (path: string, message: string) => errors.push({ index, path, message });
        const meter = meters.get(event.type);
        if (!meter) {
          fail(
            '/type',
            builtInMeter(event.type)
              ? `${event.type} is measured by Keel itself and cannot be sent`
              : `is not a meter of this org: define ${event.type} with POST /v1/usage/meters first`,
          );
          continue;
        }
        aggregations.set(meter.name, meter.aggregation);
        let value: string | null = null;
        const raw = event.data?.value;
        if (raw !== undefined) {
          const parsed = meterValue(raw);
          if (parsed.ok) value = parsed.value;
          else fail('/data/value', parsed.message);
        } else if (meter.aggregation !== 'count') {
          fail('/data/value', `is required: meter ${meter.name} aggregates with ${meter.aggregation}`);
        }
        const time = event.time === undefined ? now : new Date(event.time);
        if (Number.isNaN(time.getTime())) fail('/time', 'must be an RFC 3339 date-time');
        else if (time.getTime() < now.getTime() - MAX_EVENT_AGE_MS) {
          fail('/time', `is more than ${MAX_EVENT_AGE_MS / DAY_MS} days ago: late events are not counted`);
        } else if (time.getTime() > now.getTime() + MAX_EVENT_CLOCK_SKEW_MS) {
          fail('/time', `is more than ${MAX_EVENT_CLOCK_SKEW_MS / 60_000} minutes in the future`);
        }
        rows.push({
          id: event.id,
          meter: meter.name,
          source: event.source ?? null,
          subject: event.subject ?? null,
          time,
          value,
          data: event.data,
          keyId: options.keyId ?? '',
        });
      }
      if (errors.length > 0) {
        return {
          ok: false,
          code: 'VALIDATION_FAILED',
          detail: `${errors.length} field${errors.length === 1 ? '' : 's'} of the events are not valid; no event was recorded`,
          errors,
        };
      }
      const inserted = await database.transaction(async (tx) => {
        const written = await insertEvents(tx, orgId, rows, now);
        if (written.length === 0) return written;
        const deltas = written.map((event) => ({
          hourStart: new Date(bucketStart(event.time.getTime(), 'hour')),
          meter: event.meter,
          keyId: event.keyId,
          route: '',
          count: 1,
          sum: event.value ?? '0',
          max: event.value ?? '0',
          aggregation: aggregations.get(event.meter)!,
        }));
        const crossings = await applyDeltas(tx, orgId, deltas, thresholds, now);
        if (crossings.length > 0) await events.emit(tx, orgId, crossings.map(thresholdEvent));
        return written;
      });
      // An id sent twice in one batch is inserted once: its first occurrence is the accepted one.
      const unclaimed = new Set(inserted.map((event) => event.id));
      const results = input.map((event) => {
        const accepted = unclaimed.delete(event.id);
        return { id: event.id, status: accepted ? ('accepted' as const) : ('duplicate' as const) };
      });
      return {
        ok: true,
        value: { results, accepted: inserted.length, duplicates: input.length - inserted.length },
      };
    },

    async createMeter(orgId, input) {
      if (builtInMeter(input.name)) {
        return { ok: false, code: 'METER_EXISTS', detail: `${input.name} is a built-in meter` };
      }
      if ((await countMeters(db, orgId)) >= MAX_METERS_PER_ORG) {
        return {
          ok: false,
          code: 'TOO_MANY_METERS',
          detail: `An org may define at most ${MAX_METERS_PER_ORG} meters`,
        };
      }
      const { row, created } = await insertMeter(db, {
        org_id: orgId,
        name: input.name,
        aggregation: input.aggregation,
        description: input.description ?? null,
        unit: input.unit ?? null,
        created_at: clock.now(),
      });
      if (!created && row.aggregation !== input.aggregation) {
        return {
          ok: false,
          code: 'METER_EXISTS',
          detail: `Meter ${input.name} exists with aggregation ${row.aggregation}`,
        };
      }
      return { ok: true, value: { meter: presentMeter(row), created } };
    },

    async listMeters(orgId) {
      return [...(await metersOf(orgId, true)).values()];
    },

    async usage(orgId, query) {
      const { granularity } = query;
      const nowMs = clock.nowMs();
      const step = granularity === 'hour' ? HOUR_MS : DAY_MS;
      // Whole buckets only: `from` rounds down, `to` rounds up.
      const toMs = query.to ? query.to.getTime() : nowMs;
      const to = new Date(bucketStart(toMs + step - 1, granularity));
      const from = new Date(
        bucketStart(
          query.from ? query.from.getTime() : to.getTime() - DEFAULT_RANGE_MS[granularity],
          granularity,
        ),
      );
      if (from.getTime() >= to.getTime()) {
        return {
          ok: false,
          code: 'VALIDATION_FAILED',
          detail: '`from` must be before `to`',
          errors: [{ path: '/from', message: 'must be before to' }],
        };
      }
      if (to.getTime() - from.getTime() > MAX_RANGE_MS[granularity]) {
        return {
          ok: false,
          code: 'VALIDATION_FAILED',
          detail: `A query by ${granularity} spans at most ${MAX_RANGE_MS[granularity] / DAY_MS} days`,
          errors: [
            { path: '/from', message: `is more than ${MAX_RANGE_MS[granularity] / DAY_MS} days before to` },
          ],
        };
      }
      const meters = await metersOf(orgId, true);
      for (const name of query.meters ?? []) if (!meters.has(name)) return meterNotFound(name);
      const groupBy = query.groupBy ?? [];
      const rows = await readUsage(db, orgId, {
        granularity,
        from,
        to,
        meters: query.meters,
        groupBy,
        limit: MAX_USAGE_ROWS + 1,
      });
      if (rows.length > MAX_USAGE_ROWS) {
        return {
          ok: false,
          code: 'USAGE_QUERY_TOO_LARGE',
          detail: `The query matches more than ${MAX_USAGE_ROWS} rows: narrow the range, pick a meter or group by less`,
        };
      }
      const data = rows.map((row): UsagePoint => {
        const aggregation = meters.get(row.meter)?.aggregation ?? 'sum';
        const point: {
          periodStart: Date;
          meter: string;
          value: string;
          count: string;
          keyId?: string | null;
          userId?: string | null;
          route?: string | null;
        } = {
          periodStart: row.period_start,
          meter: row.meter,
          value: usedOf(aggregation, { count: row.event_count, sum: row.value_sum, max: row.value_max }),
          count: row.event_count,
        };
        if (groupBy.includes('key')) {
          point.keyId = row.key_id?.startsWith('key_') ? row.key_id : null;
          point.userId = row.key_id?.startsWith('usr_') ? row.key_id : null;
        }
        if (groupBy.includes('route')) point.route = row.route || null;
        return point;
      });
      return { ok: true, value: { granularity, from, to, data } };
    },

    async setQuota(orgId, meterName, quota) {
      const meter = (await metersOf(orgId, true)).get(meterName);
      if (!meter) return meterNotFound(meterName);
      const now = clock.now();
      const periodStart = monthStart(now);
      await database.transaction(async (tx) => {
        await upsertQuota(tx, orgId, meter.name, quota, now);
        // Usage may already be past a threshold of the new quota: say so now, not at the next use.
        const crossings = await recordCrossings(tx, orgId, {
          meter: meter.name,
          aggregation: meter.aggregation,
          periodStart,
          thresholds,
          now,
        });
        if (crossings.length > 0) await events.emit(tx, orgId, crossings.map(thresholdEvent));
      });
      const [row] = await listQuotas(db, orgId, periodStart, meter.name);
      return { ok: true, value: quotaOf(row!, meter.aggregation, periodStart) };
    },

    async listQuotas(orgId) {
      const periodStart = monthStart(clock.now());
      const meters = await metersOf(orgId, true);
      const rows = await listQuotas(db, orgId, periodStart);
      return rows.map((row) => quotaOf(row, meters.get(row.meter)?.aggregation ?? 'sum', periodStart));
    },

    async deleteQuota(orgId, meter) {
      if (!(await deleteQuota(db, orgId, meter))) {
        return { ok: false, code: 'NOT_FOUND', detail: `No quota on meter ${meter}` };
      }
      return { ok: true, value: undefined };
    },

    async flush() {
      await aggregator.flush();
    },

    async prune() {
      const nowMs = clock.nowMs();
      const cutoffs: Record<PrunableTable, Date> = {
        usage_events: new Date(nowMs - EVENT_RETENTION_MS),
        usage_hourly: new Date(nowMs - HOURLY_RETENTION_MS),
        usage_daily: new Date(nowMs - DAILY_RETENTION_MS),
        usage_period_totals: new Date(nowMs - DAILY_RETENTION_MS),
        usage_threshold_crossings: new Date(nowMs - DAILY_RETENTION_MS),
      };
      const deleted = {} as Record<PrunableTable, number>;
      for (const [table, before] of Object.entries(cutoffs) as [PrunableTable, Date][]) {
        deleted[table] = 0;
        for (;;) {
          const count = await deleteBefore(db, table, before, PRUNE_BATCH_SIZE);
          deleted[table] += count;
          if (count < PRUNE_BATCH_SIZE) break;
        }
      }
      return deleted;
    },

    close: () => aggregator.close(),
  };
}
