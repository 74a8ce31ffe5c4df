import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DISABLE_AFTER_FAILING_MS, decide, MAX_ATTEMPTS, RETRY_SCHEDULE_MS, shouldDisable } from './retry.ts';

const now = new Date('2026-11-21T12:00:00Z');
const middle = () => 0.5;

test('a 2xx succeeds; 3xx, 4xx, 5xx and no response are retried', () => {
  assert.deepEqual(decide({ status: 204, retryAfter: undefined }, 1, now, middle), { kind: 'succeeded' });
  for (const status of [301, 400, 404, 500, undefined]) {
    assert.equal(decide({ status, retryAfter: undefined }, 1, now, middle).kind, 'retry', String(status));
  }
});

test('retries follow the schedule 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then fail', () => {
  const delays = [];
  for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
    const decision = decide({ status: 500, retryAfter: undefined }, attempt, now, middle);
    assert.equal(decision.kind, 'retry');
    delays.push((decision as { delayMs: number }).delayMs);
  }
  assert.deepEqual(delays, [...RETRY_SCHEDULE_MS]);
  assert.deepEqual(decide({ status: 500, retryAfter: undefined }, MAX_ATTEMPTS, now, middle), {
    kind: 'failed',
  });
});

test('jitter stays within ±10 %', () => {
  const low = decide({ status: 500, retryAfter: undefined }, 1, now, () => 0) as { delayMs: number };
  const high = decide({ status: 500, retryAfter: undefined }, 1, now, () => 0.999999) as { delayMs: number };
  assert.equal(low.delayMs, 4_500);
  assert.ok(high.delayMs <= 5_500 && high.delayMs > 5_490);
});

test('410 Gone disables the endpoint at once', () => {
  assert.deepEqual(decide({ status: 410, retryAfter: undefined }, 1, now, middle), { kind: 'endpoint_gone' });
});

test('429, 502 and 504 honour Retry-After in seconds or as a date', () => {
  for (const status of [429, 502, 504]) {
    assert.deepEqual(decide({ status, retryAfter: '120' }, 1, now, middle), {
      kind: 'retry',
      delayMs: 120_000,
    });
  }
  assert.deepEqual(decide({ status: 429, retryAfter: 'Sat, 21 Nov 2026 12:10:00 GMT' }, 1, now, middle), {
    kind: 'retry',
    delayMs: 600_000,
  });
  assert.deepEqual(decide({ status: 500, retryAfter: '120' }, 1, now, middle), {
    kind: 'retry',
    delayMs: 5_000,
  });
});

test('an endpoint is disabled after 5 days of failures', () => {
  assert.equal(shouldDisable(null, now), false);
  assert.equal(shouldDisable(new Date(now.getTime() - DISABLE_AFTER_FAILING_MS + 1), now), false);
  assert.equal(shouldDisable(new Date(now.getTime() - DISABLE_AFTER_FAILING_MS), now), true);
});
