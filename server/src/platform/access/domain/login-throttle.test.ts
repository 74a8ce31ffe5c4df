import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACCOUNT_THROTTLE, delayAfter, judge, locksOut } from './login-throttle.ts';

describe('failed sign-in backoff', () => {
  const policy = ACCOUNT_THROTTLE;

  test('the first failures are free; then each waits twice as long, up to the cap', () => {
    assert.equal(delayAfter(policy.freeFailures - 1, policy), 0);
    assert.equal(delayAfter(policy.freeFailures, policy), 1_000);
    assert.equal(delayAfter(policy.freeFailures + 1, policy), 2_000);
    assert.equal(delayAfter(policy.freeFailures + 3, policy), 8_000);
    assert.equal(delayAfter(policy.freeFailures + 30, policy), policy.maxDelayMs);
  });

  test('an attempt inside the backoff is refused with the time left', () => {
    const state = { failures: policy.freeFailures + 1, lastFailureAtMs: 10_000, lockedUntilMs: undefined };
    assert.deepEqual(judge(state, 10_500, policy), {
      allowed: false,
      reason: 'backoff',
      retryAfterMs: 1_500,
    });
    assert.deepEqual(judge(state, 12_000, policy), { allowed: true });
  });

  test('a lockout refuses every attempt until it ends', () => {
    assert.ok(locksOut(policy.lockoutFailures, policy));
    assert.ok(!locksOut(policy.lockoutFailures - 1, policy));
    const state = { failures: policy.lockoutFailures, lastFailureAtMs: 0, lockedUntilMs: policy.lockoutMs };
    assert.deepEqual(judge(state, policy.lockoutMs - 1, policy), {
      allowed: false,
      reason: 'locked',
      retryAfterMs: 1,
    });
  });
});
