import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from './gcra.ts';

describe('GCRA', () => {
  const bucket = { limit: 10, windowMs: 60_000 };

  test('a fresh bucket admits its whole quota at once, then refuses with the time to one unit', () => {
    let tat: number | undefined;
    for (let i = 0; i < 10; i++) {
      const decision = decide([bucket], [tat], 0, 1, 1);
      assert.equal(decision.granted, 1, `request ${i + 1}`);
      assert.equal(decision.buckets[0]!.remaining, 9 - i);
      tat = decision.buckets[0]!.nextTatMs;
    }
    const denied = decide([bucket], [tat], 0, 1, 1);
    assert.equal(denied.granted, 0);
    assert.equal(denied.buckets[0]!.retryAfterMs, 6_000, 'one unit every 6 s');
    assert.equal(decide([bucket], [tat], 6_000, 1, 1).granted, 1);
  });

  test('a denial by one bucket consumes nothing from the others', () => {
    const small = { limit: 1, windowMs: 60_000 };
    const first = decide([bucket, small], [undefined, undefined], 0, 1, 1);
    const tats = first.buckets.map((outcome) => outcome.nextTatMs);
    const denied = decide([bucket, small], tats, 0, 1, 1);
    assert.equal(denied.granted, 0);
    assert.equal(denied.buckets[0]!.nextTatMs, undefined, 'nothing to store');
    assert.equal(denied.buckets[0]!.remaining, 9, 'the big bucket kept its units');
    assert.equal(denied.buckets[0]!.retryAfterMs, 0, 'the big bucket is not why it was denied');
  });

  test('a lease takes what every bucket can afford, up to what is wanted', () => {
    const decision = decide([bucket, { limit: 3, windowMs: 60_000 }], [undefined, undefined], 0, 5, 1);
    assert.equal(decision.granted, 3);
    assert.equal(decision.buckets[1]!.remaining, 0);
    assert.equal(decision.buckets[0]!.remaining, 7);
  });

  test('the bucket refills at its rate and never beyond its quota', () => {
    const decision = decide([bucket], [0], 600_000, 1, 1);
    assert.equal(decision.buckets[0]!.remaining, 9);
  });
});
