import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffMs, confirmationsRequired, DEFAULT_CONFIRMATIONS, decide } from './tracking.ts';

const mined = (
  blockNumber: number,
  blockHash: string,
  head: number,
  extra: { canonical?: boolean; reverted?: boolean } = {},
) =>
  ({
    kind: 'mined',
    blockNumber,
    blockHash,
    head,
    canonical: extra.canonical ?? true,
    reverted: extra.reverted ?? false,
  }) as const;

describe('attestation tracking decisions', () => {
  test('a mined transaction waits until the including block and the ones after it reach the threshold', () => {
    assert.deepEqual(decide({ blockHash: null }, mined(10, '0xa', 10), 2), {
      action: 'wait',
      blockNumber: 10,
      blockHash: '0xa',
      confirmations: 1,
      reorged: false,
    });
    assert.equal(decide({ blockHash: '0xa' }, mined(10, '0xa', 11), 2).action, 'confirm');
  });

  test('the same transaction in another block is a reorg, counted from its new block', () => {
    const decision = decide({ blockHash: '0xa' }, mined(12, '0xb', 12), 2);
    assert.deepEqual(decision, {
      action: 'wait',
      blockNumber: 12,
      blockHash: '0xb',
      confirmations: 1,
      reorged: true,
    });
  });

  test('a receipt from a block that is no longer canonical is not counted', () => {
    assert.deepEqual(decide({ blockHash: '0xa' }, mined(10, '0xa', 15, { canonical: false }), 2), {
      action: 'wait',
      blockNumber: null,
      blockHash: null,
      confirmations: 0,
      reorged: true,
    });
  });

  test('a transaction the node no longer knows is broadcast again; a reorg if it had been mined', () => {
    assert.deepEqual(decide({ blockHash: null }, { kind: 'unknown' }, 2), {
      action: 'rebroadcast',
      reorged: false,
    });
    assert.deepEqual(decide({ blockHash: '0xa' }, { kind: 'unknown' }, 2), {
      action: 'rebroadcast',
      reorged: true,
    });
  });

  test('a reverted transaction fails', () => {
    assert.equal(decide({ blockHash: null }, mined(10, '0xa', 20, { reverted: true }), 2).action, 'fail');
  });

  test('the policy is per chain, with a default, and back-off grows to a cap', () => {
    assert.equal(confirmationsRequired(31337), 2);
    assert.equal(confirmationsRequired(1), 12);
    assert.equal(confirmationsRequired(999_999), DEFAULT_CONFIRMATIONS);
    assert.ok(backoffMs(2) > backoffMs(1));
    assert.equal(backoffMs(50), 10 * 60 * 1000);
  });
});
