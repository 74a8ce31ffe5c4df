import { sql } from 'kysely';
import type { Db, Tx } from '../../infra/db/database.ts';

export interface EndpointRow {
  org_id: string;
  id: string;
  url: string;
  description: string;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  ordered: boolean;
  rate_limit_per_second: number | null;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type DeliveryStatus = 'pending' | 'sending' | 'succeeded' | 'failed';

export interface DeliveryRow {
  org_id: string;
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  body: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  locked_until: Date | null;
  last_response_status: number | null;
  created_at: Date;
  updated_at: Date;
  sequence: string;
}

export interface AttemptRow {
  org_id: string;
  id: string;
  delivery_id: string;
  endpoint_id: string;
  attempt: number;
  started_at: Date;
  duration_ms: number;
  response_status: number | null;
  response_excerpt: string | null;
  error: string | null;
}

declare module '../../infra/db/tables.ts' {
  interface Tables {
    webhook_endpoints: EndpointRow;
    webhook_deliveries: DeliveryRow;
    webhook_attempts: AttemptRow;
    event_consumers: { name: string; cursor: string | null; updated_at: Date };
  }
}

export async function insertDeliveries(
  tx: Tx,
  rows: readonly Omit<DeliveryRow, 'locked_until' | 'last_response_status' | 'attempts' | 'sequence'>[],
) {
  if (rows.length === 0) return;
  // A delivery is unique per (endpoint, event): a fan-out repeated after a crash adds nothing.
  await sql`
    insert into webhook_deliveries
      (org_id, id, endpoint_id, event_id, event_type, body, status, next_attempt_at, created_at, updated_at)
    select org_id, id, endpoint_id, event_id, event_type, body, status, next_attempt_at, created_at, updated_at
    from unnest(
      ${rows.map((r) => r.org_id)}::text[], ${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.endpoint_id)}::text[],
      ${rows.map((r) => r.event_id)}::text[], ${rows.map((r) => r.event_type)}::text[], ${rows.map((r) => r.body)}::text[],
      ${rows.map((r) => r.status)}::text[], ${rows.map((r) => r.next_attempt_at)}::timestamptz[],
      ${rows.map((r) => r.created_at)}::timestamptz[], ${rows.map((r) => r.updated_at)}::timestamptz[]
    ) with ordinality as d(org_id, id, endpoint_id, event_id, event_type, body, status, next_attempt_at, created_at,
      updated_at, ordinality)
    -- Rows are inserted in event order, so each endpoint's sequence follows its events.
    order by ordinality
    on conflict (org_id, endpoint_id, event_id) do nothing`.execute(tx);
}

export type ClaimedDelivery = DeliveryRow &
  Pick<
    EndpointRow,
    | 'url'
    | 'ordered'
    | 'rate_limit_per_second'
    | 'secret_sealed'
    | 'previous_secret_sealed'
    | 'previous_secret_expires_at'
  >;

/**
 * Claims due deliveries for sending: pending ones whose time has come, and sending ones whose
 * lease ran out (their worker died mid-delivery). At most `perEndpoint` per endpoint, so one
 * busy endpoint cannot take every slot; an ordered endpoint gets only its oldest undelivered one,
 * and none while one is in flight.
 */
export async function claimDueDeliveries(
  db: Db,
  options: {
    now: Date;
    leaseMs: number;
    limit: number;
    perEndpoint: number;
    excludeEndpoints: readonly string[];
  },
): Promise<ClaimedDelivery[]> {
  const leaseUntil = new Date(options.now.getTime() + options.leaseMs);
  const { rows } = await sql<ClaimedDelivery>`
    with due as (
      select d.org_id, d.id, row_number() over (partition by d.org_id, d.endpoint_id order by d.sequence) as rank,
             e.ordered
      from webhook_deliveries d
      join webhook_endpoints e on e.org_id = d.org_id and e.id = d.endpoint_id
      where e.enabled
        and d.endpoint_id <> all(${options.excludeEndpoints}::text[])
        and ((d.status = 'pending' and d.next_attempt_at <= ${options.now})
          or (d.status = 'sending' and d.locked_until < ${options.now}))
        and not (e.ordered and exists (
          select 1 from webhook_deliveries older
          where older.org_id = d.org_id and older.endpoint_id = d.endpoint_id
            and older.status in ('pending', 'sending')
            and older.sequence < d.sequence))
      order by d.next_attempt_at
      limit ${options.limit * 4}
    ),
    picked as (
      select d.org_id, d.id from webhook_deliveries d
      join due on due.org_id = d.org_id and due.id = d.id
      where due.rank <= case when due.ordered then 1 else ${options.perEndpoint} end
      limit ${options.limit}
      for update of d skip locked
    )
    update webhook_deliveries d
    set status = 'sending', attempts = d.attempts + 1, locked_until = ${leaseUntil}, updated_at = ${options.now}
    from picked, webhook_endpoints e
    where d.org_id = picked.org_id and d.id = picked.id and e.org_id = d.org_id and e.id = d.endpoint_id
    returning d.*, e.url, e.ordered, e.rate_limit_per_second, e.secret_sealed, e.previous_secret_sealed,
      e.previous_secret_expires_at`.execute(db);
  return rows;
}

export interface DeliveryResult {
  readonly orgId: string;
  readonly deliveryId: string;
  readonly endpointId: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly nextAttemptAt: Date;
  readonly responseStatus: number | null;
  readonly attempt: Omit<AttemptRow, 'org_id' | 'delivery_id' | 'endpoint_id'> | undefined;
}

/** Writes a batch of attempt outcomes in one transaction: two statements, whatever the size. */
export async function recordResults(tx: Tx, results: readonly DeliveryResult[], now: Date) {
  if (results.length === 0) return;
  await sql`
    update webhook_deliveries d
    set status = r.status, attempts = r.attempts, next_attempt_at = r.next_attempt_at,
        last_response_status = coalesce(r.response_status, d.last_response_status),
        locked_until = null, updated_at = ${now}
    from unnest(
      ${results.map((r) => r.orgId)}::text[], ${results.map((r) => r.deliveryId)}::text[],
      ${results.map((r) => r.status)}::text[], ${results.map((r) => r.attempts)}::int[],
      ${results.map((r) => r.nextAttemptAt)}::timestamptz[], ${results.map((r) => r.responseStatus)}::int[]
    ) as r(org_id, id, status, attempts, next_attempt_at, response_status)
    where d.org_id = r.org_id and d.id = r.id`.execute(tx);
  const attempts = results.filter((r) => r.attempt);
  if (attempts.length === 0) return;
  await sql`
    insert into webhook_attempts
      (org_id, id, delivery_id, endpoint_id, attempt, started_at, duration_ms, response_status, response_excerpt, error)
    select * from unnest(
      ${attempts.map((r) => r.orgId)}::text[], ${attempts.map((r) => r.attempt!.id)}::text[],
      ${attempts.map((r) => r.deliveryId)}::text[], ${attempts.map((r) => r.endpointId)}::text[],
      ${attempts.map((r) => r.attempt!.attempt)}::int[], ${attempts.map((r) => r.attempt!.started_at)}::timestamptz[],
      ${attempts.map((r) => r.attempt!.duration_ms)}::int[], ${attempts.map((r) => r.attempt!.response_status)}::int[],
      ${attempts.map((r) => r.attempt!.response_excerpt)}::text[], ${attempts.map((r) => r.attempt!.error)}::text[]
    )`.execute(tx);
}

/** Marks endpoints that just failed as failing (from now, if not already) and returns their state. */
export async function markFailing(tx: Tx, endpoints: readonly { orgId: string; id: string }[], now: Date) {
  if (endpoints.length === 0) return [];
  const { rows } = await sql<{ org_id: string; id: string; failing_since: Date; enabled: boolean }>`
    update webhook_endpoints e set failing_since = coalesce(e.failing_since, ${now})
    from unnest(${endpoints.map((e) => e.orgId)}::text[], ${endpoints.map((e) => e.id)}::text[]) as x(org_id, id)
    where e.org_id = x.org_id and e.id = x.id
    returning e.org_id, e.id, e.failing_since, e.enabled`.execute(tx);
  return rows;
}

export async function clearFailing(tx: Tx, endpoints: readonly { orgId: string; id: string }[]) {
  if (endpoints.length === 0) return;
  await sql`
    update webhook_endpoints e set failing_since = null
    from unnest(${endpoints.map((e) => e.orgId)}::text[], ${endpoints.map((e) => e.id)}::text[]) as x(org_id, id)
    where e.org_id = x.org_id and e.id = x.id and e.failing_since is not null`.execute(tx);
}

export async function disableEndpoint(tx: Tx, orgId: string, id: string, reason: string, now: Date) {
  const result = await tx
    .updateTable('webhook_endpoints')
    .set({ enabled: false, disabled_reason: reason, updated_at: now })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('enabled', '=', true)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function enabledEndpointsOf(db: Db | Tx, orgIds: readonly string[]): Promise<EndpointRow[]> {
  if (orgIds.length === 0) return [];
  return db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('org_id', 'in', orgIds)
    .where('enabled', '=', true)
    .execute();
}
