import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { Type } from 'typebox';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { createDatabase, type Database, trackCommit } from '../../infra/db/database.ts';
import type { Tables } from '../../infra/db/tables.ts';
import { newId } from '../../infra/ids.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { defineEvent } from './catalogue.ts';
import {
  createEventsService,
  createWakeup,
  EVENT_RETENTION_MS,
  EVENTS_CHANNEL,
  type EventsService,
} from './service.ts';

const log = createLogger({ level: 'silent', pretty: false });
defineEvent({
  type: 'test.happened',
  version: 2,
  description: 'A test event.',
  payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
});

defineEvent({
  type: 'test.noted',
  version: 1,
  description: 'A test event carrying text.',
  payload: Type.Object(
    { text: Type.String(), nested: Type.Array(Type.String()) },
    { additionalProperties: false },
  ),
});

describe('events outbox', () => {
  /**
   * An event becomes readable once every older writing transaction in the cluster has ended;
   * other test files share the cluster, so reads wait for `count` events like a consumer would.
   */
  const listWhenVisible = async (orgId: string, count: number, options: { after?: string } = {}) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const listed = await events.list(orgId, { ...options, limit: 1000 });
      if (listed.length >= count || Date.now() > deadline) return listed;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  let testDb: TestDatabase;
  let database: Database;
  let events: EventsService;
  const clock = manualClock('2026-11-21T00:00:00Z');
  before(async () => {
    testDb = await createTestDatabase();
    database = createDatabase({ url: testDb.url, poolSize: 6, log });
    events = createEventsService({ db: database.db, clock, newId });
  });
  after(async () => {
    await database.close();
    await testDb.drop();
  });

  test('an event exists exactly when its transaction commits', async () => {
    const orgId = newId('org');
    await database.transaction((tx) =>
      events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 1 } }]),
    );
    await assert.rejects(
      database.transaction(async (tx) => {
        await events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 2 } }]);
        throw new Error('the change failed');
      }),
    );
    const listed = await listWhenVisible(orgId, 1);
    assert.deepEqual(
      listed.map((event) => [event.type, event.version, event.payload]),
      [['test.happened', 2, { n: 1 }]],
    );
    assert.match(listed[0]!.id, /^evt_/);
    assert.deepEqual(await events.get(orgId, listed[0]!.id), listed[0]);
  });

  test('payloads come back exactly as written, and one emit keeps its order', async () => {
    const orgId = newId('org');
    const texts = ['quote " and \\ backslash', '{"json":"inside"}', 'line\nbreak\ttab', 'ünïcødé ✓ 🦀', ''];
    await database.transaction((tx) =>
      events.emit(
        tx,
        orgId,
        texts.map((text) => ({ type: 'test.noted', payload: { text, nested: [text, ','] } })),
      ),
    );
    const listed = await listWhenVisible(orgId, texts.length);
    assert.deepEqual(
      listed.map((event) => event.payload),
      texts.map((text) => ({ text, nested: [text, ','] })),
    );
  });

  test('an unknown type or an invalid payload is refused before anything is written', async () => {
    const orgId = newId('org');
    await assert.rejects(
      database.transaction((tx) => events.emit(tx, orgId, [{ type: 'nobody.declared', payload: {} }])),
      /not in the catalogue/,
    );
    await assert.rejects(
      database.transaction((tx) =>
        events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 'one' } }]),
      ),
      /payload is invalid/,
    );
    assert.equal((await events.list(orgId, { limit: 10 })).length, 0);
  });

  test('events are scoped to their org', async () => {
    const a = newId('org');
    const b = newId('org');
    await database.transaction((tx) => events.emit(tx, a, [{ type: 'test.happened', payload: { n: 1 } }]));
    const [event] = await listWhenVisible(a, 1);
    assert.equal((await events.list(b, { limit: 10 })).length, 0);
    assert.equal(await events.get(b, event!.id), undefined);
  });

  test('a reader never skips an event that commits after a later one', async () => {
    const orgId = newId('org');
    // 1. Transaction A writes first (lower position) but stays open.
    const clientA = await database.pool.connect();
    await clientA.query('begin');
    await clientA.query(
      `insert into events (org_id, id, type, version, payload) values ($1, $2, 'test.happened', 2, '{"n":1}')`,
      [orgId, newId('evt')],
    );
    // 2. Transaction B writes later and commits.
    await database.transaction((tx) =>
      events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 2 } }]),
    );
    // 3. While A is open, a reader sees nothing yet: not B, since A might still commit before it.
    assert.deepEqual(await events.list(orgId, { limit: 10 }), []);
    // 4. A commits: the reader sees A then B, and a cursor taken now misses neither.
    await clientA.query('commit');
    clientA.release();
    const listed = await listWhenVisible(orgId, 2);
    assert.deepEqual(
      listed.map((event) => (event.payload as { n: number }).n),
      [1, 2],
    );
    assert.deepEqual(await events.list(orgId, { after: listed[1]!.cursor, limit: 10 }), []);
    assert.deepEqual(
      (await events.list(orgId, { after: listed[0]!.cursor, limit: 10 })).map((e) => e.id),
      [listed[1]!.id],
    );
  });

  test('concurrent writers produce one gap-free order for every reader', async () => {
    const orgId = newId('org');
    const writers = 6;
    const perWriter = 20;
    await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        (async () => {
          for (let i = 0; i < perWriter; i++) {
            await database.transaction((tx) =>
              events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: w * 1000 + i } }]),
            );
          }
        })(),
      ),
    );
    // A reader sees an event once every older transaction in the cluster has ended, so like any
    // consumer it keeps reading until it has caught up.
    const seen: string[] = [];
    let cursor: string | undefined;
    const deadline = Date.now() + 10_000;
    while (seen.length < writers * perWriter && Date.now() < deadline) {
      const page = await events.list(orgId, { after: cursor, limit: 7 });
      if (page.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      seen.push(...page.map((event) => event.id));
      cursor = page.at(-1)!.cursor;
    }
    assert.equal(seen.length, writers * perWriter);
    assert.equal(new Set(seen).size, seen.length);
    // Each writer's own events appear in the order it wrote them.
    const all = await events.list(orgId, { limit: 1000 });
    for (let w = 0; w < writers; w++) {
      const mine = all.map((e) => (e.payload as { n: number }).n).filter((n) => Math.floor(n / 1000) === w);
      assert.deepEqual(
        mine,
        [...mine].sort((x, y) => x - y),
      );
    }
  });

  test('a malformed cursor is refused', async () => {
    await assert.rejects(events.list(newId('org'), { after: 'bm9wZQ', limit: 1 }), /cursor is not valid/);
  });

  test('events older than the retention window are pruned', async () => {
    const orgId = newId('org');
    await database.transaction((tx) =>
      events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 1 } }]),
    );
    clock.advance(EVENT_RETENTION_MS / 2);
    await database.transaction((tx) =>
      events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 2 } }]),
    );
    clock.advance(EVENT_RETENTION_MS / 2 + 1000);
    assert.ok((await events.pruneExpired()) >= 1);
    assert.deepEqual(
      (await listWhenVisible(orgId, 1)).map((e) => (e.payload as { n: number }).n),
      [2],
    );
  });

  describe('wake-ups', () => {
    let listener: pg.Client;
    let received: number[] = [];
    before(async () => {
      listener = new pg.Client({ connectionString: testDb.url });
      await listener.connect();
      listener.on('notification', (message) => {
        if (message.channel === EVENTS_CHANNEL) received.push(performance.now());
      });
      await listener.query(`listen ${EVENTS_CHANNEL}`);
    });
    after(() => listener.end());

    /** Waits until `count` wake-ups arrived (or 5 s), then a little longer for any extra. */
    const wakeUps = async (count: number) => {
      const deadline = Date.now() + 5_000;
      while (received.length < count && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, 100));
      return received.length;
    };

    test('consumers are woken once the transaction has committed, and not for a rollback', async () => {
      received = [];
      const orgId = newId('org');
      let committedAt = 0;
      await database.transaction(async (tx) => {
        await events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 1 } }]);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(received.length, 0, 'nobody is woken before the commit');
        committedAt = performance.now();
      });
      assert.equal(await wakeUps(1), 1);
      assert.ok(received[0]! >= committedAt);

      received = [];
      await assert.rejects(
        database.transaction(async (tx) => {
          await events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 2 } }]);
          throw new Error('the change failed');
        }),
      );
      assert.equal(await wakeUps(1), 0);
    });

    test('a tracked transaction sends no NOTIFY itself; an untracked one does', async () => {
      // A query builder on the same pool that records what runs through it.
      const statements: string[] = [];
      const recording = new Kysely<Tables>({
        dialect: new PostgresDialect({ pool: database.pool }),
        log: (event) => {
          if (!/^(begin|commit)$/.test(event.query.sql)) statements.push(event.query.sql);
        },
      });
      const orgId = newId('org');
      received = [];
      let tracked: ReturnType<typeof trackCommit> | undefined;
      await recording.transaction().execute(async (tx) => {
        tracked = trackCommit(tx);
        await events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 1 } }]);
      });
      tracked!.committed();
      assert.equal(statements.length, 1);
      assert.match(statements[0]!, /insert into events/);
      assert.equal(await wakeUps(1), 1, 'woken by the statement sent after the commit');

      // Untracked (a transaction Keel did not open): the NOTIFY goes inside it, as before.
      statements.length = 0;
      received = [];
      await recording
        .transaction()
        .execute((tx) => events.emit(tx, orgId, [{ type: 'test.happened', payload: { n: 2 } }]));
      assert.equal(statements.length, 2);
      assert.match(statements[1]!, /pg_notify/);
      assert.equal(await wakeUps(1), 1);
    });

    test('wake-ups asked for while one is in flight go out as one more', async () => {
      received = [];
      const wake = createWakeup(database.db, (error) => assert.fail(String(error)));
      for (let i = 0; i < 50; i += 1) wake();
      assert.equal(await wakeUps(2), 2);
      wake();
      assert.equal(await wakeUps(3), 3);
    });

    test('a wake-up that fails is reported, and the next one is still sent', async () => {
      const closed = createDatabase({ url: testDb.url, poolSize: 1, log });
      await closed.close();
      const errors: unknown[] = [];
      const wake = createWakeup(closed.db, (error) => errors.push(error));
      wake();
      for (let i = 0; i < 200 && errors.length < 1; i += 1) await new Promise((r) => setTimeout(r, 5));
      wake();
      for (let i = 0; i < 200 && errors.length < 2; i += 1) await new Promise((r) => setTimeout(r, 5));
      assert.equal(errors.length, 2);
    });

    test('drain settles once the wake-up in flight and the one asked for during it have gone out', async () => {
      const closed = createDatabase({ url: testDb.url, poolSize: 1, log });
      await closed.close();
      const errors: unknown[] = [];
      const wake = createWakeup(closed.db, (error) => errors.push(error));
      await wake.drain();
      assert.equal(errors.length, 0, 'nothing in flight: settles at once');
      wake();
      wake();
      wake();
      await wake.drain();
      assert.equal(
        errors.length,
        2,
        'the first send and the one more that coalesced the others, both settled',
      );
    });
  });
});
