import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoTimeNow } from './request-log.ts';

test('isoTimeNow formats like Date#toISOString at every millisecond of a second and across seconds', () => {
  const base = Date.UTC(2026, 10, 22, 1, 2, 3);
  for (const offset of [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 59_999, 60_000, 86_400_000]) {
    assert.equal(isoTimeNow(base + offset), new Date(base + offset).toISOString());
  }
  // Going back in time (a clock step) is formatted right too.
  assert.equal(isoTimeNow(base - 1), new Date(base - 1).toISOString());
  const now = Date.now();
  assert.equal(isoTimeNow(now), new Date(now).toISOString());
});
