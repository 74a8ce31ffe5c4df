import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeID } from 'typeid-js';
import { isId, newId } from './ids.ts';

test('ids are TypeIDs with a UUIDv7 that typeid-js parses', () => {
  const before = Date.now();
  const id = newId('org');
  assert.match(id, /^org_[0-7][0-9a-hjkmnp-tv-z]{25}$/);
  const parsed = TypeID.fromString(id);
  assert.equal(parsed.getType(), 'org');
  const uuid = parsed.toUUID();
  assert.equal(uuid[14], '7', 'version 7');
  assert.match(uuid[19]!, /[89ab]/, 'RFC 9562 variant');
  const ms = Number.parseInt(uuid.replaceAll('-', '').slice(0, 12), 16);
  assert.ok(ms >= before && ms <= Date.now());
  assert.ok(isId(id, 'org'));
  assert.ok(!isId(id, 'usr'));
  assert.ok(!isId('org_nope', 'org'));
});

test('ids made later sort after earlier ones, and do not repeat', async () => {
  const first = newId('evt');
  await new Promise((resolve) => setTimeout(resolve, 2));
  const second = newId('evt');
  assert.ok(second > first);
  const many = Array.from({ length: 10_000 }, () => newId('req'));
  assert.equal(new Set(many).size, 10_000);
  assert.deepEqual([...many].sort(), many, 'ids made in one burst (many per millisecond) sort in order');
});

test('every id carries the millisecond it was made in, across millisecond boundaries', async () => {
  const timestampOf = (id: string) =>
    Number.parseInt(TypeID.fromString(id).toUUID().replaceAll('-', '').slice(0, 12), 16);
  const deadline = Date.now() + 30;
  while (Date.now() < deadline) {
    const before = Date.now();
    const id = newId('req');
    const after = Date.now();
    const ms = timestampOf(id);
    assert.ok(ms >= before && ms <= after, `${id}: ${ms} not in [${before}, ${after}]`);
    if (Math.random() < 0.1) await new Promise((resolve) => setImmediate(resolve));
  }
});
