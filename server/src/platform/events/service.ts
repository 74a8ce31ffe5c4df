import { sql } from 'kysely';
import type { Clock } from '../../infra/clock.ts';
import { afterCommit, type Db, type Tx } from '../../infra/db/database.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import { assertValidEvent } from './catalogue.ts';
import {
  deleteEventsBefore,
  type EventRow,
  findEvent,
  insertEvents,
  readEvents,
  type StreamPosition,
} from './store.ts';

/** NOTIFY channel raised once events have committed, to wake the stream's consumers. */
export const EVENTS_CHANNEL = 'keel_events';
/** Events are kept this long, then pruned; consumers must keep up within it. */
export const EVENT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** Rows deleted per statement by the retention job. */
export const EVENT_PRUNE_BATCH_SIZE = 5_000;
/** Events one `emit` call may write. */
export const MAX_EVENTS_PER_EMIT = 10_000;

export interface NewEvent {
  readonly type: string;
  readonly payload: unknown;
}

export interface Event {
  readonly id: string;
  readonly orgId: string;
  readonly type: string;
  readonly version: number;
  readonly payload: unknown;
  readonly createdAt: Date;
  /** Opaque: pass it back as `after` to read what follows this event. */
  readonly cursor: string;
}

export interface EventsService {
  /**
   * Writes events in the caller's transaction, so they exist exactly when the change they
   * report commits. Payloads are checked against the catalogue. Returns the new event ids.
   */
  emit(tx: Tx, orgId: string, events: readonly NewEvent[]): Promise<string[]>;
  /** One org's events in order, after `after` (a cursor from an earlier event). */
  list(
    orgId: string,
    options: { after?: string; limit: number; types?: readonly string[] },
  ): Promise<Event[]>;
  get(orgId: string, id: string): Promise<Event | undefined>;
  /** Every org's events in order, for consumers such as the webhook dispatcher. */
  readAll(options: { after?: string; limit: number }): Promise<Event[]>;
  /** Deletes events older than the retention window; returns how many went. */
  pruneExpired(): Promise<number>;
  /** Waits for the wake-up in flight, if any: call it after the last emit, before the pool closes. */
  close(): Promise<void>;
}

export function encodeCursor(position: StreamPosition): string {
  return Buffer.from(`${position.txId}:${position.position}`).toString('base64url');
}

/** Returns undefined for a cursor that was not made by `encodeCursor`. */
export function decodeCursor(cursor: string): StreamPosition | undefined {
  const match = /^(\d{1,20}):(\d{1,20})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return match ? { txId: match[1]!, position: match[2]! } : undefined;
}

function toEvent(row: EventRow): Event {
  return {
    id: row.id,
    orgId: row.org_id,
    type: row.type,
    version: row.version,
    payload: row.payload,
    createdAt: row.created_at,
    cursor: encodeCursor({ txId: row.tx_id, position: row.position }),
  };
}

export class InvalidCursorError extends Error {}

function position(cursor: string | undefined): StreamPosition | undefined {
  if (cursor === undefined) return undefined;
  const decoded = decodeCursor(cursor);
  if (!decoded) throw new InvalidCursorError('cursor is not valid');
  return decoded;
}

/**
 * Wakes the stream's consumers after events commit. A NOTIFY inside the emitting transaction
 * would make every such commit wait for the one before it: PostgreSQL holds one lock on its
 * notification queue from a notifying transaction's pre-commit until its commit record is
 * flushed. So the wake-up is sent after the commit, as a statement of its own, with at most one
 * in flight per process; events that commit while one is in flight are announced by one more,
 * sent when it completes. Consumers also poll, so a lost wake-up only delays them.
 */
const notifyConsumers = (executor: Db | Tx) => sql`select pg_notify(${EVENTS_CHANNEL}, '')`.execute(executor);

export interface Wakeup {
  /** Asks for a wake-up; coalesced with the one in flight, if any. */
  (): void;
  /** Settles once no wake-up is in flight or asked for: wait for it before the pool closes. */
  drain(): Promise<void>;
}

export function createWakeup(db: Db, onError: (error: unknown) => void): Wakeup {
  /** The wake-ups in flight, settled when none is left to send; undefined when idle. */
  let sending: Promise<void> | undefined;
  let again = false;
  const send = async () => {
    do {
      again = false;
      try {
        await notifyConsumers(db);
      } catch (error) {
        onError(error);
      }
    } while (again);
    sending = undefined;
  };
  const wake = () => {
    if (sending) again = true;
    else sending = send();
  };
  wake.drain = () => sending ?? Promise.resolve();
  return wake;
}

export function createEventsService(deps: {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
  log?: Logger;
}): EventsService {
  const { db, clock, newId, log } = deps;
  const wake = createWakeup(db, (error) => log?.warn({ err: error }, 'events wake-up not sent'));
  return {
    async emit(tx, orgId, events) {
      if (events.length > MAX_EVENTS_PER_EMIT)
        throw new Error(`at most ${MAX_EVENTS_PER_EMIT} events per emit`);
      const now = clock.now();
      const rows = events.map((event) => {
        const definition = assertValidEvent(event.type, event.payload);
        return {
          org_id: orgId,
          id: newId('evt'),
          type: event.type,
          version: definition.version,
          payload: event.payload,
          created_at: now,
        };
      });
      await insertEvents(tx, rows);
      // Consumers (the webhook dispatcher) listen for this. A transaction Keel does not track
      // notifies inside itself: PostgreSQL delivers that when it commits.
      if (!afterCommit(tx, wake)) await notifyConsumers(tx);
      return rows.map((row) => row.id);
    },
    async list(orgId, options) {
      const rows = await readEvents(db, {
        orgId,
        after: position(options.after),
        limit: options.limit,
        types: options.types,
      });
      return rows.map(toEvent);
    },
    async get(orgId, id) {
      const row = await findEvent(db, orgId, id);
      return row && toEvent(row);
    },
    async readAll(options) {
      return (await readEvents(db, { after: position(options.after), limit: options.limit })).map(toEvent);
    },
    async pruneExpired() {
      const before = new Date(clock.now().getTime() - EVENT_RETENTION_MS);
      let total = 0;
      for (;;) {
        const deleted = await deleteEventsBefore(db, before, EVENT_PRUNE_BATCH_SIZE);
        total += deleted;
        if (deleted < EVENT_PRUNE_BATCH_SIZE) return total;
      }
    },
    close: () => wake.drain(),
  };
}
