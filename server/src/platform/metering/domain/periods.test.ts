import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dayStart, hourStart, monthStart, nextMonthStart } from './periods.ts';
import { meterValue } from './values.ts';

describe('usage periods', () => {
  test('hours and days start on UTC boundaries', () => {
    const at = Date.parse('2026-11-23T17:42:10.123Z');
    assert.equal(new Date(hourStart(at)).toISOString(), '2026-11-23T17:00:00.000Z');
    assert.equal(new Date(dayStart(at)).toISOString(), '2026-11-23T00:00:00.000Z');
    assert.equal(hourStart(Date.parse('2026-11-23T17:00:00Z')), Date.parse('2026-11-23T17:00:00Z'));
  });

  test('the quota period is the UTC calendar month, across year ends', () => {
    assert.equal(monthStart(new Date('2026-12-31T23:59:59Z')).toISOString(), '2026-12-01T00:00:00.000Z');
    assert.equal(nextMonthStart(new Date('2026-12-31T23:59:59Z')).toISOString(), '2027-01-01T00:00:00.000Z');
  });
});

describe('meter values', () => {
  test('decimal strings and exact numbers are accepted as decimal strings', () => {
    assert.deepEqual(meterValue('12.5'), { ok: true, value: '12.5' });
    assert.deepEqual(meterValue(3), { ok: true, value: '3' });
    assert.deepEqual(meterValue(0.25), { ok: true, value: '0.25' });
    assert.deepEqual(meterValue('0'), { ok: true, value: '0' });
  });

  test('negative, inexact and malformed values are refused with a reason', () => {
    for (const bad of [-1, 1e-7, 2 ** 60, '-1', '1e5', '01', '1.', '']) {
      const result = meterValue(bad);
      assert.equal(result.ok, false, `${bad} is refused`);
    }
  });
});
