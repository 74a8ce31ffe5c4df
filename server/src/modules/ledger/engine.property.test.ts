// Property-based: random transfers, holds, posts, voids, reversals, retries and expiries, sent
// concurrently through three ledger instances (three replicas, each with its own pool and
// batcher) on one database. Whatever the interleaving, the invariants hold afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { newId } from '../../infra/ids.ts';
import type { TransferRequest } from './domain/requests.ts';
import { seedOrg, type TestLedger, testLedger, transfer } from './test-support.ts';

const REPLICAS = 3;
const WALLETS = 5;
/** Operations sent at the same moment; waves run one after the other. */
const WAVE_SIZE = 12;
const RUNS = 10;

let database: TestDatabase;
let replicas: TestLedger[];
const clock = manualClock('2026-11-22T10:00:00Z');

before(async () => {
  database = await createTestDatabase();
  replicas = Array.from({ length: REPLICAS }, () => testLedger(database.url, { clock, poolSize: 4 }));
});
after(async () => {
  await Promise.all(replicas.map((replica) => replica.close()));
  await database.drop();
});

type Operation =
  | {
      kind: 'transfer' | 'pending';
      from: number;
      to: number;
      amount: number;
      timeout: boolean;
      replica: number;
    }
  | { kind: 'post' | 'void'; target: number; amount: number | null; replica: number }
  | { kind: 'reversal'; target: number; amount: number | null; replica: number }
  | { kind: 'retry'; target: number; replica: number }
  | { kind: 'expire'; replica: number };

const replica = fc.integer({ min: 0, max: REPLICAS - 1 });
/** Account index: 0 is the bank (no limit), 1..WALLETS the wallets (no debit beyond credit). */
const account = fc.integer({ min: 0, max: WALLETS });
const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('transfer' as const),
      from: account,
      to: account,
      amount: fc.integer({ min: 1, max: 400 }),
      timeout: fc.constant(false),
      replica,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('pending' as const),
      from: account,
      to: account,
      amount: fc.integer({ min: 1, max: 400 }),
      timeout: fc.boolean(),
      replica,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('post' as const, 'void' as const),
      target: fc.nat(),
      amount: fc.option(fc.integer({ min: 1, max: 400 })),
      replica,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('reversal' as const),
      target: fc.nat(),
      amount: fc.option(fc.integer({ min: 1, max: 200 })),
      replica,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retry' as const), target: fc.nat(), replica }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), replica }) },
);

test('under concurrent random operations from three replicas, every invariant holds', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 10, maxLength: 48 }), async (operations) => {
      const { orgId, bank, wallets } = await seedOrg(replicas[0]!.ledger, WALLETS, { fund: 500n });
      const accounts = [bank.id, ...wallets.map((wallet) => wallet.id)];
      /** Every request sent, so retries and post/void/reversal targets pick among them. */
      const sent: TransferRequest[] = [];
      const pendings: string[] = [];
      const posted: string[] = [];
      /** Transfer id → how many times a client was told it was created. */
      const createdCount = new Map<string, number>();

      const run = async (op: Operation) => {
        const ledger = replicas[op.replica]!.ledger;
        let request: TransferRequest;
        switch (op.kind) {
          case 'expire':
            clock.advance(61_000);
            await ledger.expireHolds();
            return;
          case 'retry':
            if (sent.length === 0) return;
            request = sent[op.target % sent.length]!;
            break;
          case 'transfer':
          case 'pending':
            if (op.from === op.to) return;
            request = transfer(accounts[op.from]!, accounts[op.to]!, op.amount, {
              id: newId('trf'),
              ...(op.kind === 'pending' && {
                type: 'pending' as const,
                ...(op.timeout && { timeoutSeconds: 60 }),
              }),
            });
            break;
          case 'post':
          case 'void':
            if (pendings.length === 0) return;
            request = {
              id: newId('trf'),
              type: op.kind,
              pendingId: pendings[op.target % pendings.length]!,
              ...(op.kind === 'post' && op.amount !== null && { amount: String(op.amount) }),
            };
            break;
          case 'reversal':
            if (posted.length === 0) return;
            request = {
              id: newId('trf'),
              type: 'reversal',
              reversesId: posted[op.target % posted.length]!,
              ...(op.amount !== null && { amount: String(op.amount) }),
            };
            break;
        }
        sent.push(request);
        const result = await ledger.createTransfer(orgId, request);
        if (!result.ok) return;
        const { transfer: written, created } = result.value;
        assert.equal(written.id, request.id, 'a retry answers the transfer of its id');
        if (created) createdCount.set(written.id, (createdCount.get(written.id) ?? 0) + 1);
        if (written.type === 'pending') pendings.push(written.id);
        if (written.type === 'posted' || written.type === 'post') posted.push(written.id);
      };

      for (let start = 0; start < operations.length; start += WAVE_SIZE) {
        await Promise.all(operations.slice(start, start + WAVE_SIZE).map(run));
      }

      // 1. Per asset, debits equal credits (posted and pending); every stored balance equals the
      //    sum of its transfers; the pending balances equal the open holds.
      const report = await replicas[1]!.ledger.reconcile(orgId);
      assert.equal(report.ok, true, JSON.stringify(report, null, 2));
      // 2. No wallet's debits (posted and held) exceed its credits.
      for (const wallet of wallets) {
        const balance = (await replicas[2]!.ledger.getAccount(orgId, wallet.id))!.balance;
        assert.ok(BigInt(balance.available) >= 0n, `${wallet.id} available ${balance.available}`);
      }
      // 3. Exactly once: each transfer a client was told was created is in the journal once, and
      //    the journal holds nothing else but the expiry job's releases.
      for (const [id, count] of createdCount) assert.equal(count, 1, `${id} reported created ${count} times`);
      const { rows } = await sql<{ id: string; kind: string }>`
        select id, kind from ledger_transfers where org_id = ${orgId} and code is distinct from 'seed'`.execute(
        replicas[0]!.database.db,
      );
      const journal = new Set(rows.filter((row) => row.kind !== 'expire').map((row) => row.id));
      assert.deepEqual([...journal].sort(), [...createdCount.keys()].sort());
    }),
    { numRuns: RUNS },
  );
});
