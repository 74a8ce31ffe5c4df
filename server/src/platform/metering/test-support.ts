// Helpers shared by the metering tests: a metering service on a test database with the real
// events outbox, like one replica of Keel.
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import client from 'prom-client';
import { type Clock, systemClock } from '../../infra/clock.ts';
import { createDatabase, type Database } from '../../infra/db/database.ts';
import { newId } from '../../infra/ids.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { createEventsService } from '../events/index.ts';
import { createMeteringService, type MeteringService, type Result } from './service.ts';

export interface TestMetering {
  readonly metering: MeteringService;
  readonly database: Database;
  close(): Promise<void>;
}

export function testMetering(url: string, options: { clock?: Clock } = {}): TestMetering {
  const log = createLogger({
    level: (process.env.KEEL_TEST_LOG_LEVEL as 'silent') ?? 'silent',
    pretty: false,
  });
  const database = createDatabase({ url, poolSize: 5, log });
  const clock = options.clock ?? systemClock;
  const events = createEventsService({ db: database.db, clock, newId });
  const metering = createMeteringService({
    database,
    clock,
    log,
    events,
    registry: new client.Registry(),
    // Tests flush explicitly: the timer must not race them.
    flushIntervalMs: 3_600_000,
  });
  return {
    metering,
    database,
    close: async () => {
      await metering.close();
      await database.close();
    },
  };
}

export function ok<T>(result: Result<T>): T {
  if (!result.ok) assert.fail(`expected success, got ${result.code}: ${result.detail}`);
  return result.value;
}

export function failed<T>(result: Result<T>) {
  if (result.ok) assert.fail(`expected a failure, got ${JSON.stringify(result.value)}`);
  return result;
}

/** The usage.threshold_reached events of an org in the outbox, oldest first. */
export async function thresholdEvents(database: Database, orgId: string) {
  const { rows } = await sql<{
    payload: { meter: string; threshold: number; quota: string; used: string; periodStart: string };
  }>`
    select payload from events where org_id = ${orgId} and type = 'usage.threshold_reached'
    order by tx_id, position`.execute(database.db);
  return rows.map((row) => row.payload);
}
