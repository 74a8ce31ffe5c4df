import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { limitSubject, parseAllowlist } from './cidr.ts';

describe('IP allowlists', () => {
  test('addresses and CIDR ranges of both families match what they cover', () => {
    const parsed = parseAllowlist(['203.0.113.0/24', '198.51.100.7', '2001:db8::/32']);
    assert.ok(parsed.ok);
    const { allowlist } = parsed;
    assert.ok(allowlist.allows('203.0.113.200'));
    assert.ok(allowlist.allows('198.51.100.7'));
    assert.ok(allowlist.allows('2001:db8:1::5'));
    assert.ok(!allowlist.allows('203.0.114.1'));
    assert.ok(!allowlist.allows('198.51.100.8'));
    assert.ok(!allowlist.allows('2001:db9::1'));
    assert.ok(!allowlist.allows('not an ip'));
  });

  test('an IPv4-mapped IPv6 client address matches its IPv4 range', () => {
    const parsed = parseAllowlist(['127.0.0.0/8']);
    assert.ok(parsed.ok);
    assert.ok(parsed.allowlist.allows('::ffff:127.0.0.1'));
  });

  test('entries are normalised to network/prefix', () => {
    const parsed = parseAllowlist(['10.1.2.3/8', '192.0.2.1', '2001:DB8::1/32']);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.allowlist.entries, ['10.0.0.0/8', '192.0.2.1/32', '2001:db8::/32']);
  });

  test('per-address limits count IPv6 clients by /64 and IPv4 clients by address', () => {
    assert.equal(limitSubject('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(limitSubject('2001:db8:1:2:bbbb::2'), '2001:db8:1:2::/64');
    assert.equal(limitSubject('203.0.113.9'), '203.0.113.9');
    assert.equal(limitSubject('::ffff:203.0.113.9'), '203.0.113.9');
  });

  test('every invalid entry is reported', () => {
    assert.deepEqual(parseAllowlist(['10.0.0.0/33', 'example.com', '10.0.0.1']), {
      ok: false,
      invalid: ['10.0.0.0/33', 'example.com'],
    });
  });
});
