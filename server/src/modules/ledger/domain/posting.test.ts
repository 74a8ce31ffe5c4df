import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccountState, TransferCommand, TransferGroup } from './model.ts';
import { applyGroups, type LedgerView } from './posting.ts';

const NOW = new Date('2026-11-22T10:00:00Z');
const ORG = 'org_test';

function account(id: string, overrides: Partial<AccountState> = {}): AccountState {
  return {
    id,
    asset: 'USD',
    debitsMustNotExceedCredits: false,
    creditsMustNotExceedDebits: false,
    overdraftLimit: null,
    debitsPosted: 0n,
    creditsPosted: 0n,
    debitsPending: 0n,
    creditsPending: 0n,
    ...overrides,
  };
}

function view(accounts: AccountState[]): LedgerView {
  return {
    accounts: new Map(accounts.map((a) => [a.id, a])),
    transfers: new Map(),
    openHolds: new Map(),
    resolutions: new Map(),
    references: new Map(),
    reversed: new Map(),
  };
}

const command = (id: string, overrides: Partial<TransferCommand>): TransferCommand => ({
  id,
  kind: 'posted',
  debitAccountId: 'bank',
  creditAccountId: 'wallet',
  asset: 'USD',
  amount: 10n,
  code: null,
  reference: null,
  metadata: null,
  ...overrides,
});
const single = (c: TransferCommand): TransferGroup => ({ orgId: ORG, transactionId: null, transfers: [c] });

describe('posting rules', () => {
  test('transfers in one batch see each other: the second spends what the first credited', () => {
    const state = view([
      account('bank'),
      account('wallet', { debitsMustNotExceedCredits: true }),
      account('shop'),
    ]);
    const { outcomes, writes } = applyGroups(
      state,
      [
        single(command('t1', {})),
        single(command('t2', { debitAccountId: 'wallet', creditAccountId: 'shop', amount: 10n })),
        single(command('t3', { debitAccountId: 'wallet', creditAccountId: 'shop', amount: 1n })),
      ],
      NOW,
    );
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [true, true, false],
    );
    assert.equal(writes.transfers.length, 2);
    const wallet = writes.accounts.find((a) => a.id === 'wallet')!;
    assert.deepEqual([wallet.debitsPosted, wallet.creditsPosted], [10n, 10n]);
  });

  test('a failed group leaves no trace, and the groups around it still apply', () => {
    const state = view([account('bank'), account('wallet', { debitsMustNotExceedCredits: true })]);
    const { outcomes, writes } = applyGroups(
      state,
      [
        single(command('t1', { amount: 5n })),
        {
          orgId: ORG,
          transactionId: 'txn_1',
          transfers: [
            command('t2', { amount: 100n }),
            command('t3', { debitAccountId: 'wallet', creditAccountId: 'bank', amount: 1_000n }),
          ],
        },
        single(command('t4', { amount: 7n })),
      ],
      NOW,
    );
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [true, false, true],
    );
    const failed = outcomes[1]!;
    assert.ok(!failed.ok && failed.index === 1 && failed.error.code === 'INSUFFICIENT_FUNDS');
    assert.deepEqual(
      writes.transfers.map((t) => t.id),
      ['t1', 't4'],
    );
    assert.equal(writes.accounts.find((a) => a.id === 'wallet')!.creditsPosted, 12n);
  });

  test('an id twice in one batch is written once; with other fields the second is a conflict', () => {
    const state = view([account('bank'), account('wallet')]);
    const { outcomes, writes } = applyGroups(
      state,
      [single(command('t1', {})), single(command('t1', {})), single(command('t1', { amount: 11n }))],
      NOW,
    );
    const [first, second, third] = outcomes;
    assert.ok(first?.ok && first.transfers[0]!.created);
    assert.ok(second?.ok && !second.transfers[0]!.created);
    assert.ok(third && !third.ok && third.error.code === 'TRANSFER_ID_CONFLICT');
    assert.equal(writes.transfers.length, 1);
  });

  test('a hold placed and posted in one batch writes no hold row, and balances end posted', () => {
    const state = view([account('bank'), account('wallet')]);
    const { outcomes, writes } = applyGroups(
      state,
      [
        single(command('p1', { kind: 'pending', amount: 50n, timeoutSeconds: 60 })),
        single({
          id: 'c1',
          kind: 'post',
          pendingId: 'p1',
          amount: 20n,
          code: null,
          reference: null,
          metadata: null,
        }),
      ],
      NOW,
    );
    assert.ok(outcomes.every((o) => o.ok));
    assert.deepEqual(writes.holdsOpened, []);
    assert.deepEqual(writes.holdsClosed, []);
    const wallet = writes.accounts.find((a) => a.id === 'wallet')!;
    assert.deepEqual([wallet.creditsPosted, wallet.creditsPending], [20n, 0n]);
    const post = writes.transfers.find((t) => t.id === 'c1')!;
    assert.deepEqual([post.amount, post.pendingAmount], [20n, 50n]);
  });

  test('a hold past its timeout can be expired but not posted; one not past it cannot be expired', () => {
    const pending = {
      id: 'p1',
      kind: 'pending' as const,
      debitAccountId: 'bank',
      creditAccountId: 'wallet',
      asset: 'USD',
      amount: 5n,
      pendingId: null,
      pendingAmount: null,
      reversesId: null,
      transactionId: null,
      timeoutAt: new Date(NOW.getTime() - 1),
      code: null,
      reference: null,
      metadata: null,
      createdAt: new Date(NOW.getTime() - 60_000),
    };
    const state = view([account('bank', { debitsPending: 5n }), account('wallet', { creditsPending: 5n })]);
    state.transfers.set('p1', pending);
    state.openHolds.set('p1', pending.timeoutAt);
    const base = { code: null, reference: null, metadata: null };
    const { outcomes, writes } = applyGroups(
      state,
      [
        single({ id: 'c1', kind: 'post', pendingId: 'p1', ...base }),
        single({ id: 'e1', kind: 'expire', pendingId: 'p1', ...base }),
        single({ id: 'v1', kind: 'void', pendingId: 'p1', ...base }),
      ],
      NOW,
    );
    const [post, expire, voided] = outcomes;
    assert.ok(post && !post.ok && post.error.code === 'PENDING_EXPIRED');
    assert.ok(expire?.ok);
    assert.ok(voided && !voided.ok && voided.error.code === 'PENDING_EXPIRED');
    assert.deepEqual(writes.holdsClosed, ['p1']);
    assert.equal(writes.accounts.find((a) => a.id === 'bank')!.debitsPending, 0n);
  });
});
