import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { createLogger } from '../observability/logger.ts';
import { afterCommit, createDatabase, type Database, trackCommit } from './database.ts';

const log = createLogger({ level: 'silent', pretty: false });

describe('after-commit hooks', () => {
  let testDb: TestDatabase;
  let database: Database;
  before(async () => {
    testDb = await createTestDatabase({ empty: true });
    database = createDatabase({ url: testDb.url, poolSize: 4, log });
    await sql`create table notes (id integer primary key)`.execute(database.db);
  });
  after(async () => {
    await database.close();
    await testDb.drop();
  });

  /** Whether another connection sees note `id` now. */
  const visible = async (id: number) =>
    (await sql<{ id: number }>`select id from notes where id = ${id}`.execute(database.db)).rows.length === 1;

  test('a hook runs once the transaction has committed, when another connection sees its work', async () => {
    const seen: boolean[] = [];
    const pending: Promise<void>[] = [];
    await database.transaction(async (tx) => {
      await sql`insert into notes values (1)`.execute(tx);
      assert.equal(
        afterCommit(tx, () => pending.push(visible(1).then((v) => void seen.push(v)))),
        true,
      );
      assert.equal(pending.length, 0, 'the hook waits for the commit');
    });
    assert.equal(pending.length, 1);
    await Promise.all(pending);
    assert.deepEqual(seen, [true]);
  });

  test('a rolled-back transaction runs none of its hooks, and the next one starts clean', async () => {
    let ran = 0;
    await assert.rejects(
      database.transaction(async (tx) => {
        afterCommit(tx, () => {
          ran += 1;
        });
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    assert.equal(ran, 0);
    await database.transaction(async (tx) => {
      afterCommit(tx, () => {
        ran += 10;
      });
    });
    assert.equal(ran, 10);
  });

  test('on a plain connection a hook runs at once; an untracked transaction keeps nothing', async () => {
    let ran = 0;
    assert.equal(
      afterCommit(database.db, () => {
        ran += 1;
      }),
      true,
    );
    assert.equal(ran, 1);
    await database.db.transaction().execute(async (tx) => {
      assert.equal(
        afterCommit(tx, () => {
          ran += 1;
        }),
        false,
      );
    });
    assert.equal(ran, 1);
  });

  test('trackCommit serves code that opens its own transactions', async () => {
    const ran: string[] = [];
    const hooksRan = () => [...ran];
    const client = await database.pool.connect();
    try {
      // A builder standing for the connection's open transaction, as the ledger engine lends one.
      const builder = database.db;
      const tracked = trackCommit(builder);
      await client.query('begin');
      afterCommit(builder, () => ran.push('committed'));
      assert.deepEqual(hooksRan(), [], 'a tracked builder defers even though it is not a Kysely transaction');
      await client.query('commit');
      tracked.committed();
      assert.deepEqual(ran, ['committed']);
      // Once its transaction ended, the builder is a plain connection again.
      afterCommit(builder, () => ran.push('at once'));
      assert.deepEqual(ran, ['committed', 'at once']);

      const abandoned = trackCommit(builder);
      afterCommit(builder, () => ran.push('never'));
      abandoned.abandoned();
      assert.deepEqual(ran, ['committed', 'at once']);
    } finally {
      client.release();
    }
  });
});
