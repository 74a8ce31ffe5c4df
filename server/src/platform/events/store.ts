import { sql } from 'kysely';
import type { Db, Tx } from '../../infra/db/database.ts';

export interface EventsTable {
  org_id: string;
  id: string;
  type: string;
  version: number;
  payload: unknown;
  tx_id: string;
  position: string;
  created_at: Date;
}

declare module '../../infra/db/tables.ts' {
  interface Tables {
    events: EventsTable;
  }
}

export interface EventRow {
  readonly org_id: string;
  readonly id: string;
  readonly type: string;
  readonly version: number;
  readonly payload: unknown;
  readonly tx_id: string;
  readonly position: string;
  readonly created_at: Date;
}

export interface NewEventRow {
  readonly org_id: string;
  readonly id: string;
  readonly type: string;
  readonly version: number;
  readonly payload: unknown;
  readonly created_at: Date;
}

/** A reader's place in the stream: the (transaction id, position) of the last event it read. */
export interface StreamPosition {
  readonly txId: string;
  readonly position: string;
}

export async function insertEvents(tx: Tx | Db, rows: readonly NewEventRow[]): Promise<void> {
  if (rows.length === 0) return;
  // The rows travel as one JSON document: serializing it is one native call, where arrays would
  // be escaped element by element. It is parsed once, as jsonb, so each payload is taken from it
  // as it stands rather than parsed a second time from text. Positions follow the order of `rows`.
  await sql`
    insert into events (org_id, id, type, version, payload, created_at)
    select r.org_id, r.id, r.type, r.version, r.payload, r.created_at
    from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as (org_id text, id text, type text, version integer, payload jsonb, created_at timestamptz))
      with ordinality as r(org_id, id, type, version, payload, created_at, n)
    order by r.n`.execute(tx);
}

/**
 * Events after `after`, in stream order, among those whose transaction is older than every
 * transaction still running: a row that commits later can never appear before one already read.
 */
export async function readEvents(
  db: Db,
  options: { orgId?: string; after?: StreamPosition; limit: number; types?: readonly string[] },
): Promise<EventRow[]> {
  const { rows } = await sql<EventRow>`
    select org_id, id, type, version, payload, tx_id::text as tx_id, position::text as position, created_at
    from events
    where tx_id < pg_snapshot_xmin(pg_current_snapshot())
      ${options.orgId ? sql`and org_id = ${options.orgId}` : sql``}
      ${options.after ? sql`and (tx_id, position) > (${options.after.txId}::xid8, ${options.after.position}::bigint)` : sql``}
      ${options.types && options.types.length > 0 ? sql`and type = any(${options.types}::text[])` : sql``}
    order by tx_id, position
    limit ${options.limit}`.execute(db);
  return rows;
}

export async function findEvent(db: Db, orgId: string, id: string): Promise<EventRow | undefined> {
  const { rows } = await sql<EventRow>`
    select org_id, id, type, version, payload, tx_id::text as tx_id, position::text as position, created_at
    from events where org_id = ${orgId} and id = ${id}`.execute(db);
  return rows[0];
}

/** Deletes up to `limit` events created before `before`; returns how many went. */
export async function deleteEventsBefore(db: Db, before: Date, limit: number): Promise<number> {
  const result = await sql`
    delete from events e using (
      select org_id, id from events where created_at < ${before} limit ${limit}
    ) doomed
    where e.org_id = doomed.org_id and e.id = doomed.id`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
