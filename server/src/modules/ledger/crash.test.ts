// Crash safety: a real `keel start` process takes a load of transfers and transactions over
// HTTP, is killed with SIGKILL mid-load, is started again, and every request is retried with the
// same ids. Nothing may be half-written, and every transfer must exist exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { keelEnv, listeningUrl, spawnKeel, tempDir } from '../../../test/process.ts';
import { createDatabase } from '../../infra/db/database.ts';
import { newId } from '../../infra/ids.ts';
import { createLogger } from '../../infra/observability/logger.ts';

/** Requests in the load: single transfers, and transactions of TRANSACTION_SIZE transfers. */
const REQUESTS = 240;
const TRANSACTION_SIZE = 3;
/** Concurrent HTTP clients. */
const CLIENTS = 16;
/** The server is killed once this many requests have been answered: the rest are in flight or unsent. */
const KILL_AFTER_ANSWERS = 60;
const ACCOUNTS = 8;
const REQUEST_TIMEOUT_MS = 10_000;

let database: TestDatabase;
let cwd: string;
before(async () => {
  database = await createTestDatabase();
  cwd = await tempDir('keel-ledger-crash-');
});
after(async () => {
  await database.drop();
});

interface Planned {
  readonly path: '/v1/ledger/transfers' | '/v1/ledger/transactions';
  readonly body: Record<string, unknown>;
  /** Transfer ids this request writes, and the amount each moves to its credit account. */
  readonly transfers: readonly { id: string; debit: string; credit: string; amount: bigint }[];
  readonly transactionId?: string;
}

async function post(url: string, headers: Record<string, string>, planned: Planned) {
  const response = await fetch(url + planned.path, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(planned.body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test('after kill -9 mid-load and a restart, retrying every request writes each transfer exactly once and no transaction in part', async () => {
  // 1. An org, an API key and accounts, made through a short-lived in-process app.
  const setup = await buildTestApp(database);
  const caller = await createOrgWithApiKey(setup.app, { permissions: ['ledger:read', 'ledger:write'] });
  const headers = caller.headers;
  await setup.app.inject({
    method: 'POST',
    url: '/v1/ledger/assets',
    headers,
    payload: { code: 'USD', scale: 2 },
  });
  const accounts: string[] = [];
  for (let index = 0; index < ACCOUNTS; index += 1) {
    const response = await setup.app.inject({
      method: 'POST',
      url: '/v1/ledger/accounts',
      headers,
      payload: { asset: 'USD', name: `account ${index}` },
    });
    accounts.push(response.json().id);
  }
  await setup.close();

  const plan: Planned[] = Array.from({ length: REQUESTS }, (_, index) => {
    const leg = (offset: number) => {
      const debit = accounts[(index + offset) % ACCOUNTS]!;
      const credit = accounts[(index + offset + 1 + (index % 3)) % ACCOUNTS]!;
      return { id: newId('trf'), debit, credit, amount: BigInt(1 + (index % 97)) };
    };
    const toBody = (t: ReturnType<typeof leg>) => ({
      id: t.id,
      debitAccountId: t.debit,
      creditAccountId: t.credit,
      asset: 'USD',
      amount: t.amount.toString(),
    });
    if (index % 4 === 0) {
      const transactionId = newId('txn');
      const transfers = Array.from({ length: TRANSACTION_SIZE }, (_, offset) => leg(offset));
      return {
        path: '/v1/ledger/transactions',
        body: { id: transactionId, transfers: transfers.map(toBody) },
        transfers,
        transactionId,
      };
    }
    const transfer = leg(0);
    return { path: '/v1/ledger/transfers', body: toBody(transfer), transfers: [transfer] };
  });

  // 2. Start the server and send the load; kill it with SIGKILL once enough requests were answered.
  const env = keelEnv({
    DATABASE_URL: database.url,
    KEEL_DATA_DIR: await tempDir('keel-ledger-crash-data-'),
  });
  const first = spawnKeel(['start'], { cwd, env });
  const url = await listeningUrl(first);
  const answered = new Map<number, { status: number; body: Record<string, unknown> }>();
  let next = 0;
  let killed = false;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (!killed && next < plan.length) {
        const index = next++;
        try {
          answered.set(index, await post(url, headers, plan[index]!));
        } catch {
          // The server died under this request: it may or may not have committed.
        }
        if (!killed && answered.size >= KILL_AFTER_ANSWERS) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    }),
  );
  await first.waitForExit();
  assert.equal(first.exit?.signal, 'SIGKILL');
  assert.ok(
    answered.size >= KILL_AFTER_ANSWERS && answered.size < REQUESTS,
    `${answered.size} answered before the kill`,
  );
  for (const response of answered.values()) assert.ok(response.status === 201, JSON.stringify(response));

  // 3. No transaction is in part: each has all its transfers or none.
  const log = createLogger({ level: 'silent', pretty: false });
  const db = createDatabase({ url: database.url, poolSize: 2, log });
  try {
    const { rows: partial } = await sql<{ transaction_id: string; count: string }>`
      select transaction_id, count(*) from ledger_transfers
      where org_id = ${caller.orgId} and transaction_id is not null
      group by transaction_id having count(*) <> ${TRANSACTION_SIZE}`.execute(db.db);
    assert.deepEqual(partial, []);

    // 4. Restart, and retry every request with the same ids.
    const second = spawnKeel(['start'], { cwd, env });
    const secondUrl = await listeningUrl(second);
    const retried = new Map<number, { status: number; body: Record<string, unknown> }>();
    next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < plan.length) {
          const index = next++;
          retried.set(index, await post(secondUrl, headers, plan[index]!));
        }
      }),
    );
    await second.stop('SIGTERM');

    // 5. Exactly once: every request succeeds, answers the transfers it asked for, and those that
    //    were answered before the kill are now answered as already written (200), unchanged.
    for (const [index, planned] of plan.entries()) {
      const response = retried.get(index)!;
      assert.ok([200, 201].includes(response.status), JSON.stringify(response));
      const written = planned.transactionId
        ? (response.body.transfers as { id: string; amount: string }[])
        : [response.body as { id: string; amount: string }];
      assert.deepEqual(
        written.map((transfer) => [transfer.id, transfer.amount]),
        planned.transfers.map((transfer) => [transfer.id, transfer.amount.toString()]),
      );
      const before = answered.get(index);
      if (before) {
        assert.equal(response.status, 200, 'a request answered before the crash is not written again');
        assert.deepEqual(response.body, before.body);
      }
    }
    const { rows: counts } = await sql<{ total: string; distinct_ids: string }>`
      select count(*) as total, count(distinct id) as distinct_ids from ledger_transfers
      where org_id = ${caller.orgId}`.execute(db.db);
    const expectedTransfers = plan.reduce((sum, planned) => sum + planned.transfers.length, 0);
    assert.deepEqual(counts[0], {
      total: String(expectedTransfers),
      distinct_ids: String(expectedTransfers),
    });

    // 6. Balances are the sum of the planned transfers, each counted once.
    const expected = new Map<string, bigint>(accounts.map((id) => [id, 0n]));
    for (const planned of plan) {
      for (const transfer of planned.transfers) {
        expected.set(transfer.debit, expected.get(transfer.debit)! - transfer.amount);
        expected.set(transfer.credit, expected.get(transfer.credit)! + transfer.amount);
      }
    }
    const { rows: balances } = await sql<{ id: string; net: string }>`
      select id, (credits_posted - debits_posted)::text as net from ledger_accounts
      where org_id = ${caller.orgId}`.execute(db.db);
    assert.deepEqual(new Map(balances.map((row) => [row.id, BigInt(row.net)])), expected);
  } finally {
    await db.close();
  }
});
