import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { createDatabase, type Database } from '../../infra/db/database.ts';
import { newId } from '../../infra/ids.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import type { TransferRecord } from './domain/model.ts';
import { lockAndRead, writeBatch } from './store.ts';

/**
 * Accounts in the org, and transfers in the batch (each between two accounts of its own): a
 * batch this small among this many accounts is cheapest to reach by key, which the planner sees
 * when it knows the batch's ids; told only that a JSON document holds about 100 rows, it scans
 * the table instead. (A batch that touches a large share of a small table may be scanned for
 * good reason.)
 */
const ACCOUNTS = 5_000;
const TRANSFERS = 4;

describe('ledger store: batch statements', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  const orgId = newId('org');
  let accountIds: string[];

  before(async () => {
    testDatabase = await createTestDatabase();
    database = createDatabase({
      url: testDatabase.url,
      poolSize: 2,
      log: createLogger({ level: 'silent', pretty: false }),
    });
    await sql`insert into ledger_assets (org_id, code, scale, created_at) values (${orgId}, 'USD', 2, now())`.execute(
      database.db,
    );
    accountIds = Array.from({ length: ACCOUNTS }, () => newId('acc'));
    await sql`insert into ledger_accounts (org_id, id, asset, name, created_at)
      select ${orgId}, id, 'USD', 'store test', now() from unnest(${accountIds}::text[]) as u(id)`.execute(
      database.db,
    );
    await sql`analyze ledger_accounts`.execute(database.db);
  });
  after(async () => {
    await database.close();
    await testDatabase.drop();
  });

  test('a small batch among many accounts locks, reads and updates them by key: no statement scans the table', async () => {
    const touched = accountIds.slice(0, TRANSFERS * 2).sort();
    const createdAt = new Date();
    const transfers: TransferRecord[] = Array.from({ length: TRANSFERS }, (_, index) => ({
      id: newId('trf'),
      kind: 'posted',
      debitAccountId: touched[2 * index]!,
      creditAccountId: touched[2 * index + 1]!,
      asset: 'USD',
      amount: 7n,
      pendingId: null,
      pendingAmount: null,
      reversesId: null,
      transactionId: null,
      timeoutAt: null,
      code: null,
      reference: null,
      metadata: { n: index },
      createdAt,
    }));
    const client = await database.pool.connect();
    try {
      await client.query('begin');
      const reads = await lockAndRead(client, orgId, { accountIds: touched, pendingIds: [], references: [] });
      assert.equal(reads.accounts.length, touched.length);
      const accounts = reads.accounts.map((account, index) =>
        index % 2 === 0 ? { ...account, debitsPosted: 7n } : { ...account, creditsPosted: 7n },
      );
      const inserted = await writeBatch(client, orgId, {
        transfers,
        holdsOpened: [],
        holdsClosed: [],
        accounts,
      });
      assert.equal(inserted, TRANSFERS);
      // This transaction's own table statistics, up to date within it.
      const { rows } = await client.query<{ seq_scan: string; n_tup_upd: string }>(
        `select seq_scan::text, n_tup_upd::text from pg_stat_xact_user_tables where relname = 'ledger_accounts'`,
      );
      assert.equal(rows[0]!.n_tup_upd, String(touched.length), 'one update per account of the batch');
      assert.equal(rows[0]!.seq_scan, '0', 'no sequential scan of ledger_accounts');
      const { rows: balances } = await client.query<{ debits: string; credits: string }>(
        `select sum(debits_posted)::text as debits, sum(credits_posted)::text as credits
         from ledger_accounts where org_id = $1`,
        [orgId],
      );
      assert.deepEqual(balances[0], { debits: String(7 * TRANSFERS), credits: String(7 * TRANSFERS) });
      const { rows: stored } = await client.query<{ metadata: unknown }>(
        'select metadata from ledger_transfers where org_id = $1 and id = $2',
        [orgId, transfers[2]!.id],
      );
      assert.deepEqual(stored[0]!.metadata, { n: 2 });
    } finally {
      await client.query('rollback');
      client.release();
    }
  });
});
