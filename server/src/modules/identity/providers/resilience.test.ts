import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RetryableFailure, withRetries } from './resilience.ts';

/** Timers the process holds right now. */
const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;

describe('withRetries', () => {
  test('an attempt that answers leaves no timer and no listener on the deadline behind', async () => {
    const deadline = new AbortController();
    const before = timers();
    for (let i = 0; i < 20; i += 1) {
      const value = await withRetries(async (signal) => (signal.aborted ? -1 : i), {
        retries: 2,
        timeoutMs: 60_000,
        deadline: deadline.signal,
      });
      assert.equal(value, i);
    }
    assert.equal(timers(), before, 'no attempt timer outlives its attempt');
    assert.equal(getEventListeners(deadline.signal, 'abort').length, 0);
  });

  test('a finished attempt’s signal does not fire later, when its timeout would have', async () => {
    const signals: AbortSignal[] = [];
    for (let i = 0; i < 5; i += 1)
      await withRetries(async (signal) => signals.push(signal), {
        retries: 0,
        timeoutMs: 20,
        deadline: new AbortController().signal,
      });
    await sleep(80);
    assert.deepEqual(
      signals.map((signal) => signal.aborted),
      [false, false, false, false, false],
    );
  });

  test('an attempt slower than the timeout is aborted and counts as a timeout', async () => {
    let seen: AbortSignal | undefined;
    await assert.rejects(
      withRetries(
        (signal) => {
          seen = signal;
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        },
        { retries: 0, timeoutMs: 20, deadline: new AbortController().signal },
      ),
      (error) =>
        error instanceof RetryableFailure && error.outcome === 'timeout' && error.errorCode === 'timeout',
    );
    assert.ok(seen?.aborted);
    assert.equal((seen.reason as Error).name, 'TimeoutError');
  });

  test('the deadline aborts the attempt in flight and ends the retries', async () => {
    const deadline = new AbortController();
    let attempts = 0;
    const running = withRetries(
      (signal) => {
        attempts += 1;
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
      { retries: 5, timeoutMs: 60_000, deadline: deadline.signal },
    );
    await sleep(10);
    deadline.abort();
    await assert.rejects(
      running,
      (error) => error instanceof RetryableFailure && error.errorCode === 'deadline_exceeded',
    );
    assert.equal(attempts, 1);
  });

  test('a retryable failure is tried again, with backoff, until it succeeds', async () => {
    let attempts = 0;
    const retried: number[] = [];
    const value = await withRetries(
      async () => {
        attempts += 1;
        if (attempts < 3) throw new RetryableFailure('unavailable', 'provider_unavailable');
        return 'answer';
      },
      {
        retries: 3,
        timeoutMs: 1_000,
        deadline: new AbortController().signal,
        random: () => 0,
        onRetry: (_failure, attempt) => retried.push(attempt),
      },
    );
    assert.equal(value, 'answer');
    assert.deepEqual(retried, [1, 2]);
  });
});
