import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  API_KEY_PATTERN,
  BASE62,
  base62,
  generateApiKey,
  generateSessionToken,
  looksLikeApiKey,
  parseApiKey,
  randomBase62,
  SESSION_TOKEN_PATTERN,
} from './tokens.ts';

describe('API key format', () => {
  test('a generated key matches the documented pattern and passes its own checksum', () => {
    for (const environment of ['live', 'test'] as const) {
      const key = generateApiKey(environment);
      assert.match(key, API_KEY_PATTERN);
      assert.ok(key.startsWith(`keel_${environment}_`));
      assert.equal(key.length, `keel_${environment}_`.length + 38);
      assert.deepEqual(parseApiKey(key), { ok: true, environment });
    }
  });

  test('every single-character typo in the random part fails the checksum', () => {
    const key = generateApiKey('live');
    const start = 'keel_live_'.length;
    for (let i = start; i < key.length; i++) {
      const replacement = key[i] === 'a' ? 'b' : 'a';
      const typo = key.slice(0, i) + replacement + key.slice(i + 1);
      const parsed = parseApiKey(typo);
      assert.equal(parsed.ok, false, `typo at ${i} must be caught`);
    }
  });

  test('a key of the other environment, a truncated key and other tokens are refused by shape', () => {
    const key = generateApiKey('live');
    assert.equal(parseApiKey(key.replace('keel_live_', 'keel_test_')).ok, false, 'the prefix is checksummed');
    assert.equal(parseApiKey(key.slice(0, -1)).ok, false);
    assert.equal(parseApiKey(generateSessionToken()).ok, false);
    assert.equal(looksLikeApiKey(generateSessionToken()), false);
    assert.equal(looksLikeApiKey(key), true);
  });

  test('session tokens match their pattern', () => {
    assert.match(generateSessionToken(), SESSION_TOKEN_PATTERN);
  });

  test('random base62 is uniform enough: every character appears, none dominates', () => {
    const counts = new Map<string, number>();
    const sample = randomBase62(62_000);
    for (const character of sample) counts.set(character, (counts.get(character) ?? 0) + 1);
    assert.equal(counts.size, 62);
    for (const character of BASE62) {
      const count = counts.get(character) ?? 0;
      assert.ok(count > 800 && count < 1200, `${character} appeared ${count} times in 62000`);
    }
  });

  test('base62 pads to its width', () => {
    assert.equal(base62(0, 6), '000000');
    assert.equal(base62(61, 2), '0z');
    assert.equal(base62(0xffffffff, 6), '4gfFC3');
  });
});
