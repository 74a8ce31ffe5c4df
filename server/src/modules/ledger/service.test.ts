import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { newId } from '../../infra/ids.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { EXPIRE_HOLDS_JOB, ledgerJobs, RECONCILE_JOB, SNAPSHOT_BALANCES_JOB } from './jobs.ts';
import { SNAPSHOT_SETTLE_MS } from './service.ts';
import { failed, ok, openAccount, seedOrg, type TestLedger, testLedger, transfer } from './test-support.ts';

describe('ledger service', () => {
  let database: TestDatabase;
  let keel: TestLedger;
  const clock = manualClock('2026-11-22T10:00:00Z');

  before(async () => {
    database = await createTestDatabase();
    keel = testLedger(database.url, { clock });
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  const reconciled = async (orgId: string) => {
    const report = await keel.ledger.reconcile(orgId);
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    return report;
  };

  describe('assets and accounts', () => {
    test('an asset is created once; the same code with another scale is ASSET_EXISTS', async () => {
      const orgId = newId('org');
      const first = ok(await keel.ledger.createAsset(orgId, { code: 'ETH', scale: 18 }));
      assert.equal(first.created, true);
      assert.equal(ok(await keel.ledger.createAsset(orgId, { code: 'ETH', scale: 18 })).created, false);
      assert.equal(
        failed(await keel.ledger.createAsset(orgId, { code: 'ETH', scale: 6 })).code,
        'ASSET_EXISTS',
      );
      assert.equal(
        (await keel.ledger.getAsset(newId('org'), 'ETH')) === undefined,
        true,
        'assets are per org',
      );
    });

    test('an account needs an existing asset of its org', async () => {
      const orgId = newId('org');
      const result = failed(await keel.ledger.createAccount(orgId, { asset: 'USD', name: 'x' }));
      assert.equal(result.code, 'ASSET_NOT_FOUND');
    });

    test('creating an account with its id again answers it; with other fields, ACCOUNT_ID_CONFLICT', async () => {
      const { orgId } = await seedOrg(keel.ledger, 0);
      const id = newId('acc');
      const input = { id, asset: 'USD', name: 'a', metadata: { b: 1, a: 2 } };
      assert.equal(ok(await keel.ledger.createAccount(orgId, input)).created, true);
      const again = ok(await keel.ledger.createAccount(orgId, { ...input, metadata: { a: 2, b: 1 } }));
      assert.equal(again.created, false, 'metadata key order does not matter');
      assert.equal(
        failed(await keel.ledger.createAccount(orgId, { ...input, name: 'b' })).code,
        'ACCOUNT_ID_CONFLICT',
      );
    });

    test('an account created emits account.created in the outbox', async () => {
      const { orgId, bank } = await seedOrg(keel.ledger, 0);
      const { rows } = await sql<{ type: string; payload: { id: string } }>`
        select type, payload from events where org_id = ${orgId}`.execute(keel.database.db);
      assert.deepEqual(
        rows.map((row) => [row.type, row.payload.id]),
        [['account.created', bank.id]],
      );
    });
  });

  describe('posted transfers', () => {
    test('a transfer moves the amount and the balances of both sides follow', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const result = ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 1050)));
      assert.equal(result.created, true);
      assert.equal(result.transfer.amount, '1050');
      const wallet = (await keel.ledger.getAccount(orgId, wallets[0]!.id))!;
      assert.deepEqual(wallet.balance, {
        debitsPosted: '0',
        creditsPosted: '1050',
        debitsPending: '0',
        creditsPending: '0',
        posted: '1050',
        available: '1050',
      });
      assert.equal((await keel.ledger.getAccount(orgId, bank.id))!.balance.posted, '-1050');
      await reconciled(orgId);
    });

    test('INSUFFICIENT_FUNDS carries the account, its available balance and the amount asked', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 500n });
      const result = failed(await keel.ledger.createTransfer(orgId, transfer(wallets[0]!.id, bank.id, 501)));
      assert.equal(result.code, 'INSUFFICIENT_FUNDS');
      assert.deepEqual(
        { ...result.members, transferId: undefined },
        { accountId: wallets[0]!.id, available: '500', requested: '501', transferId: undefined },
      );
      ok(await keel.ledger.createTransfer(orgId, transfer(wallets[0]!.id, bank.id, 500)));
      await reconciled(orgId);
    });

    test('an overdraft limit lets a wallet go that far below zero and no further', async () => {
      const { orgId, bank } = await seedOrg(keel.ledger, 0);
      const wallet = await openAccount(keel.ledger, orgId, {
        debitsMustNotExceedCredits: true,
        overdraftLimit: '100',
      });
      ok(await keel.ledger.createTransfer(orgId, transfer(wallet.id, bank.id, 100)));
      const over = failed(await keel.ledger.createTransfer(orgId, transfer(wallet.id, bank.id, 1)));
      assert.equal(over.code, 'INSUFFICIENT_FUNDS');
      assert.equal(over.members?.available, '-100');
      assert.equal(over.members?.overdraftLimit, '100');
    });

    test('credits_must_not_exceed_debits limits the credit side', async () => {
      const { orgId, bank } = await seedOrg(keel.ledger, 0);
      const loan = await openAccount(keel.ledger, orgId, { creditsMustNotExceedDebits: true });
      const result = failed(await keel.ledger.createTransfer(orgId, transfer(bank.id, loan.id, 1)));
      assert.equal(result.code, 'INSUFFICIENT_FUNDS');
      assert.equal(result.members?.accountId, loan.id);
      ok(await keel.ledger.createTransfer(orgId, transfer(loan.id, bank.id, 10)));
      ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, loan.id, 10)));
    });

    test('ACCOUNT_NOT_FOUND and ASSET_MISMATCH are values naming what is wrong', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const missing = newId('acc');
      const notFound = failed(await keel.ledger.createTransfer(orgId, transfer(bank.id, missing, 1)));
      assert.equal(notFound.code, 'ACCOUNT_NOT_FOUND');
      assert.equal(notFound.members?.accountId, missing);
      ok(await keel.ledger.createAsset(orgId, { code: 'EUR', scale: 2 }));
      const euro = await openAccount(keel.ledger, orgId, { asset: 'EUR' });
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, transfer(bank.id, euro.id, 1))).code,
        'ASSET_MISMATCH',
      );
      const wrongAsset = transfer(bank.id, wallets[0]!.id, 1, { asset: 'EUR' });
      assert.equal(failed(await keel.ledger.createTransfer(orgId, wrongAsset)).code, 'ASSET_MISMATCH');
    });

    test("another org's accounts do not exist for a transfer", async () => {
      const mine = await seedOrg(keel.ledger, 1);
      const theirs = await seedOrg(keel.ledger, 1);
      const result = failed(
        await keel.ledger.createTransfer(mine.orgId, transfer(mine.bank.id, theirs.wallets[0]!.id, 1)),
      );
      assert.equal(result.code, 'ACCOUNT_NOT_FOUND');
    });

    test('an 18-decimal amount beyond 64 bits round-trips exactly', async () => {
      const orgId = newId('org');
      ok(await keel.ledger.createAsset(orgId, { code: 'ETH', scale: 18 }));
      const a = await openAccount(keel.ledger, orgId, { asset: 'ETH' });
      const b = await openAccount(keel.ledger, orgId, { asset: 'ETH' });
      const amount = 2n ** 255n + 12_345n;
      const result = ok(
        await keel.ledger.createTransfer(orgId, { ...transfer(a.id, b.id, amount), asset: 'ETH' }),
      );
      assert.equal(result.transfer.amount, amount.toString());
      assert.equal((await keel.ledger.getAccount(orgId, b.id))!.balance.creditsPosted, amount.toString());
    });

    test('a reference names one transfer: it finds it, and reusing it is REFERENCE_CONFLICT', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const first = ok(
        await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 5, { reference: 'inv-1' })),
      );
      assert.equal((await keel.ledger.findTransferByReference(orgId, 'inv-1'))?.id, first.transfer.id);
      assert.equal(await keel.ledger.findTransferByReference(newId('org'), 'inv-1'), undefined);
      const again = failed(
        await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 6, { reference: 'inv-1' })),
      );
      assert.equal(again.code, 'REFERENCE_CONFLICT');
      assert.equal(again.members?.existingTransferId, first.transfer.id);
    });
  });

  describe('idempotency', () => {
    test('a retried transfer id with the same fields is written once and answers the same transfer', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const request = transfer(bank.id, wallets[0]!.id, 70, { id: newId('trf'), metadata: { x: 1 } });
      const first = ok(await keel.ledger.createTransfer(orgId, request));
      const second = ok(await keel.ledger.createTransfer(orgId, request));
      assert.equal(first.created, true);
      assert.equal(second.created, false);
      assert.deepEqual(second.transfer, first.transfer);
      assert.equal((await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.posted, '70');
    });

    test('a retried transfer id with other fields is TRANSFER_ID_CONFLICT', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const id = newId('trf');
      ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 70, { id })));
      const result = failed(
        await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 71, { id })),
      );
      assert.equal(result.code, 'TRANSFER_ID_CONFLICT');
    });

    test('an Idempotency-Key without an id derives the id, so a retry after the key is gone still writes once', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const request = transfer(bank.id, wallets[0]!.id, 9);
      const first = ok(await keel.ledger.createTransfer(orgId, request, { idempotencyKey: 'k-1' }));
      const retry = ok(await keel.ledger.createTransfer(orgId, request, { idempotencyKey: 'k-1' }));
      assert.equal(retry.transfer.id, first.transfer.id);
      assert.equal(retry.created, false);
      const other = ok(await keel.ledger.createTransfer(orgId, request, { idempotencyKey: 'k-2' }));
      assert.notEqual(other.transfer.id, first.transfer.id);
    });

    test('the same transfer sent 20 times at once, by two replicas, is written exactly once', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const replica = testLedger(database.url, { clock });
      try {
        const request = transfer(bank.id, wallets[0]!.id, 3, { id: newId('trf') });
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, index) =>
            (index % 2 === 0 ? keel.ledger : replica.ledger).createTransfer(orgId, request),
          ),
        );
        const values = results.map(ok);
        assert.equal(values.filter((value) => value.created).length, 1);
        assert.ok(values.every((value) => value.transfer.id === request.id));
        assert.equal((await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.posted, '3');
      } finally {
        await replica.close();
      }
    });
  });

  describe('transactions', () => {
    test('transfers in a transaction commit together, and one failure writes none of them', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 2, { fund: 100n });
      const [a, b] = [wallets[0]!.id, wallets[1]!.id];
      const failing = failed(
        await keel.ledger.createTransaction(orgId, {
          transfers: [transfer(a, b, 60), transfer(b, bank.id, 200)],
        }),
      );
      assert.equal(failing.code, 'INSUFFICIENT_FUNDS');
      assert.equal(failing.members?.index, 1);
      assert.equal((await keel.ledger.getAccount(orgId, a))!.balance.posted, '100', 'nothing was written');

      const id = newId('txn');
      const done = ok(
        await keel.ledger.createTransaction(orgId, {
          id,
          transfers: [transfer(a, b, 60), transfer(b, bank.id, 160)],
        }),
      );
      assert.equal(done.transfers.length, 2);
      assert.ok(done.transfers.every((item) => item.transactionId === id));
      const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
      assert.deepEqual(
        (await keel.ledger.getTransaction(orgId, id))?.transfers,
        [...done.transfers].sort(byId),
      );
      assert.equal(await keel.ledger.getTransaction(newId('org'), id), undefined);
      // The retry of the whole transaction (same id, no transfer ids) writes nothing more.
      const retry = ok(
        await keel.ledger.createTransaction(orgId, {
          id,
          transfers: [transfer(a, b, 60), transfer(b, bank.id, 160)],
        }),
      );
      assert.equal(retry.created, false);
      assert.equal((await keel.ledger.getAccount(orgId, b))!.balance.posted, '0');
      await reconciled(orgId);
    });

    test('a transaction can place a hold and post it in one go', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 100n });
      const pendingId = newId('trf');
      const done = ok(
        await keel.ledger.createTransaction(orgId, {
          transfers: [
            transfer(wallets[0]!.id, bank.id, 40, { id: pendingId, type: 'pending' }),
            { type: 'post', pendingId, amount: '30' },
          ],
        }),
      );
      assert.equal(done.transfers[0]!.status, 'posted');
      assert.equal((await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.available, '70');
      await reconciled(orgId);
    });
  });

  describe('two-phase transfers', () => {
    test('a hold counts against the available balance until it is posted in part', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 100n });
      const wallet = wallets[0]!.id;
      const hold = ok(
        await keel.ledger.createTransfer(orgId, transfer(wallet, bank.id, 80, { type: 'pending' })),
      );
      assert.equal(hold.transfer.status, 'pending');
      let balance = (await keel.ledger.getAccount(orgId, wallet))!.balance;
      assert.equal(balance.posted, '100');
      assert.equal(balance.available, '20');
      const blocked = failed(await keel.ledger.createTransfer(orgId, transfer(wallet, bank.id, 21)));
      assert.equal(blocked.code, 'INSUFFICIENT_FUNDS');
      assert.equal(blocked.members?.available, '20');

      const post = ok(
        await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: hold.transfer.id, amount: '50' }),
      );
      assert.equal(post.transfer.amount, '50');
      balance = (await keel.ledger.getAccount(orgId, wallet))!.balance;
      assert.deepEqual([balance.posted, balance.available, balance.debitsPending], ['50', '50', '0']);
      assert.equal((await keel.ledger.getTransfer(orgId, hold.transfer.id))?.status, 'posted');
      await reconciled(orgId);
    });

    test('posting the full hold is the default; a second post is ALREADY_POSTED, a void after it ALREADY_POSTED too', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 100n });
      const hold = ok(
        await keel.ledger.createTransfer(orgId, transfer(wallets[0]!.id, bank.id, 30, { type: 'pending' })),
      );
      const post = ok(await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: hold.transfer.id }));
      assert.equal(post.transfer.amount, '30');
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: hold.transfer.id })).code,
        'ALREADY_POSTED',
      );
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'void', pendingId: hold.transfer.id })).code,
        'ALREADY_POSTED',
      );
    });

    test('a void releases the hold; posting or voiding again is ALREADY_VOIDED', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 100n });
      const hold = ok(
        await keel.ledger.createTransfer(orgId, transfer(wallets[0]!.id, bank.id, 30, { type: 'pending' })),
      );
      const voided = ok(
        await keel.ledger.createTransfer(orgId, { type: 'void', pendingId: hold.transfer.id }),
      );
      assert.equal(voided.transfer.amount, '30');
      assert.equal((await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.available, '100');
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'void', pendingId: hold.transfer.id })).code,
        'ALREADY_VOIDED',
      );
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: hold.transfer.id })).code,
        'ALREADY_VOIDED',
      );
      assert.equal((await keel.ledger.getTransfer(orgId, hold.transfer.id))?.status, 'voided');
    });

    test('posting more than the hold is POST_AMOUNT_EXCEEDS_PENDING; posting a posted transfer is TRANSFER_NOT_PENDING', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 100n });
      const hold = ok(
        await keel.ledger.createTransfer(orgId, transfer(wallets[0]!.id, bank.id, 30, { type: 'pending' })),
      );
      const over = failed(
        await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: hold.transfer.id, amount: '31' }),
      );
      assert.equal(over.code, 'POST_AMOUNT_EXCEEDS_PENDING');
      assert.equal(over.members?.pendingAmount, '30');
      const plain = ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 1)));
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: plain.transfer.id })).code,
        'TRANSFER_NOT_PENDING',
      );
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'void', pendingId: newId('trf') })).code,
        'TRANSFER_NOT_FOUND',
      );
    });

    test('a hold past its timeout cannot be posted, and the expiry job releases it exactly once', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 100n });
      const hold = ok(
        await keel.ledger.createTransfer(
          orgId,
          transfer(wallets[0]!.id, bank.id, 60, { type: 'pending', timeoutSeconds: 60 }),
        ),
      );
      assert.equal(hold.transfer.timeoutAt, new Date(clock.now().getTime() + 60_000).toISOString());
      clock.advance(60_000);
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'post', pendingId: hold.transfer.id })).code,
        'PENDING_EXPIRED',
      );
      const replica = testLedger(database.url, { clock });
      try {
        // Two replicas' jobs race to release it.
        const released = await Promise.all([keel.ledger.expireHolds(), replica.ledger.expireHolds()]);
        assert.equal(released[0]! + released[1]!, 1);
      } finally {
        await replica.close();
      }
      assert.equal((await keel.ledger.getTransfer(orgId, hold.transfer.id))?.status, 'expired');
      assert.equal((await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.available, '100');
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'void', pendingId: hold.transfer.id })).code,
        'PENDING_EXPIRED',
      );
      const { rows } = await sql<{ type: string }>`
        select type from events where org_id = ${orgId} and type like 'transfer.%' order by position`.execute(
        keel.database.db,
      );
      assert.deepEqual(
        rows.map((row) => row.type),
        ['transfer.posted', 'transfer.pending', 'transfer.voided'],
      );
      await reconciled(orgId);
    });
  });

  describe('reversals', () => {
    test('a reversal moves a posted amount back, in parts, never more than the original', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const original = ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 100)));
      const part = ok(
        await keel.ledger.createTransfer(orgId, {
          type: 'reversal',
          reversesId: original.transfer.id,
          amount: '40',
        }),
      );
      assert.equal(part.transfer.debitAccountId, wallets[0]!.id);
      assert.equal(part.transfer.creditAccountId, bank.id);
      const over = failed(
        await keel.ledger.createTransfer(orgId, {
          type: 'reversal',
          reversesId: original.transfer.id,
          amount: '61',
        }),
      );
      assert.equal(over.code, 'REVERSAL_EXCEEDS_AMOUNT');
      assert.equal(over.members?.remaining, '60');
      const rest = ok(
        await keel.ledger.createTransfer(orgId, { type: 'reversal', reversesId: original.transfer.id }),
      );
      assert.equal(rest.transfer.amount, '60');
      assert.equal(
        failed(
          await keel.ledger.createTransfer(orgId, { type: 'reversal', reversesId: original.transfer.id }),
        ).code,
        'ALREADY_REVERSED',
      );
      assert.equal((await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.posted, '0');
      await reconciled(orgId);
    });

    test('concurrent full reversals of one transfer, without ids, reverse it once', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const original = ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 100)));
      const results = await Promise.all(
        Array.from({ length: 5 }, () =>
          keel.ledger.createTransfer(orgId, { type: 'reversal', reversesId: original.transfer.id }),
        ),
      );
      assert.equal(results.filter((result) => result.ok).length, 1);
      assert.ok(
        results
          .filter((result) => !result.ok)
          .every((result) => !result.ok && result.code === 'ALREADY_REVERSED'),
      );
    });

    test('a pending transfer is not reversible: it is voided', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 10n });
      const hold = ok(
        await keel.ledger.createTransfer(orgId, transfer(wallets[0]!.id, bank.id, 5, { type: 'pending' })),
      );
      assert.equal(
        failed(await keel.ledger.createTransfer(orgId, { type: 'reversal', reversesId: hold.transfer.id }))
          .code,
        'TRANSFER_NOT_REVERSIBLE',
      );
    });
  });

  describe('jobs', () => {
    test('expiry, snapshots and reconciliation run on a schedule, and running them twice is harmless', async () => {
      const jobs = ledgerJobs(keel.ledger, keel.database.db);
      assert.deepEqual(
        jobs.map((job) => [job.name, Boolean(job.cron)]),
        [
          [EXPIRE_HOLDS_JOB, true],
          [SNAPSHOT_BALANCES_JOB, true],
          [RECONCILE_JOB, true],
        ],
      );
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1, { fund: 10n });
      ok(
        await keel.ledger.createTransfer(
          orgId,
          transfer(wallets[0]!.id, bank.id, 4, { type: 'pending', timeoutSeconds: 1 }),
        ),
      );
      clock.advance(SNAPSHOT_SETTLE_MS + 1_000);
      const context = { log: createLogger({ level: 'silent', pretty: false }), jobId: '1', attempt: 1 };
      for (const round of [1, 2]) {
        for (const job of jobs) await job.handler({}, context);
        assert.equal(
          (await keel.ledger.getAccount(orgId, wallets[0]!.id))!.balance.available,
          '10',
          `round ${round}`,
        );
      }
      await reconciled(orgId);
    });
  });

  describe('immutability', () => {
    test('the database refuses to update or delete a transfer, or to truncate the journal', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const { transfer: written } = ok(
        await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, 1)),
      );
      const db = keel.database.db;
      await assert.rejects(
        sql`update ledger_transfers set amount = 2 where org_id = ${orgId} and id = ${written.id}`.execute(
          db,
        ),
        /append-only/,
      );
      await assert.rejects(
        sql`delete from ledger_transfers where org_id = ${orgId} and id = ${written.id}`.execute(db),
        /append-only/,
      );
      await assert.rejects(sql`truncate ledger_transfers`.execute(db), /append-only/);
    });
  });

  describe('queries', () => {
    test('account history pages newest first through a cursor, with no gap and no repeat', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const ids: string[] = [];
      for (let index = 0; index < 7; index += 1) {
        ids.push(
          ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallets[0]!.id, index + 1))).transfer
            .id,
        );
        if (index % 2 === 0) clock.advance(1);
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = (await keel.ledger.listAccountTransfers(orgId, wallets[0]!.id, {
          limit: 3,
          ...(cursor && { cursor }),
        }))!;
        seen.push(...page.data.map((item) => item.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(seen, [...ids].reverse());
      assert.equal(
        await keel.ledger.listAccountTransfers(newId('org'), wallets[0]!.id, { limit: 3 }),
        undefined,
      );
    });

    test('the balance at a point in time is right before and after snapshots are taken', async () => {
      const { orgId, bank, wallets } = await seedOrg(keel.ledger, 1);
      const wallet = wallets[0]!.id;
      const moments: { at: Date; posted: string }[] = [];
      let total = 0;
      for (let step = 1; step <= 6; step += 1) {
        ok(await keel.ledger.createTransfer(orgId, transfer(bank.id, wallet, step)));
        total += step;
        moments.push({ at: clock.now(), posted: String(total) });
        clock.advance(SNAPSHOT_SETTLE_MS / 2);
        if (step % 2 === 0) await keel.ledger.writeSnapshots();
      }
      const { rows } = await sql<{ count: string }>`
        select count(*) from ledger_balance_snapshots where org_id = ${orgId} and account_id = ${wallet}`.execute(
        keel.database.db,
      );
      assert.ok(Number(rows[0]!.count) >= 2, 'snapshots were written');
      for (const moment of moments) {
        const balance = (await keel.ledger.getBalance(orgId, wallet, moment.at))!;
        assert.equal(balance.posted, moment.posted, `at ${moment.at.toISOString()}`);
        const before = (await keel.ledger.getBalance(orgId, wallet, new Date(moment.at.getTime() - 1)))!;
        assert.equal(BigInt(before.posted) < BigInt(moment.posted), true);
      }
      assert.equal((await keel.ledger.getBalance(orgId, wallet))!.posted, String(total));
    });
  });
});
