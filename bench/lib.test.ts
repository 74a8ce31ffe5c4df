import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, percentile, round, roundOrder } from './lib.ts';

test('median: the middle value, or the mean of the two middle values, whatever the input order', () => {
  assert.equal(median([3]), 3);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([10, 10, 1000]), 10, 'one outlier round does not move it');
  assert.throws(() => median([]), /no values/);
});

test('median does not reorder its input', () => {
  const values = [3, 1, 2];
  median(values);
  assert.deepEqual(values, [3, 1, 2]);
});

test('percentile: nearest rank', () => {
  const values = Array.from({ length: 100 }, (_, index) => 100 - index); // 100..1, unsorted
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile([7, 3, 5], 99), 7, 'with few samples p99 is the maximum');
  assert.equal(percentile([7, 3, 5], 50), 5);
  assert.throws(() => percentile([], 50), /no values/);
  assert.throws(() => percentile([1], 101), /0\.\.100/);
  assert.throws(() => percentile([1], Number.NaN), /0\.\.100/);
});

test('roundOrder alternates which side goes first', () => {
  assert.deepEqual(roundOrder(3), [
    ['baseline', 'measured'],
    ['measured', 'baseline'],
    ['baseline', 'measured'],
  ]);
  assert.deepEqual(roundOrder(0), []);
});

test('round keeps the given number of decimals', () => {
  assert.equal(round(1.23456), 1.23);
  assert.equal(round(1.23456, 3), 1.235);
  assert.equal(round(12_345.6, 0), 12_346);
});
