import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson } from './canonical.ts';
import {
  appendToChain,
  type ChainedEntry,
  type CheckpointAnchor,
  createChainVerifier,
  type EntryDraft,
  type EntryPayload,
  entryHash,
  GENESIS_HASH,
  MAX_DETAILS_BYTES,
  MAX_TARGET_KEYS,
  normalizeDetails,
  normalizeTarget,
  personalDataDigest,
  type StoredEntry,
  storableText,
} from './chain.ts';

const ORG = 'org_01jd7x8m3q9f2k5v6w7y8z9a0b';

function draft(action: string, overrides: Partial<EntryDraft> = {}): EntryDraft {
  return {
    occurredAt: new Date('2026-11-22T10:00:00.123Z'),
    actor: { kind: 'api_key', id: 'key_01jd7x8m3q9f2k5v6w7y8z9a0b' },
    action,
    target: { keyId: 'key_1' },
    outcome: 'success',
    status: 201,
    requestId: 'req_1',
    details: null,
    personalDataDigest: null,
    ...overrides,
  };
}

function chainOf(count: number): ChainedEntry[] {
  return appendToChain(
    ORG,
    { seq: 0, hash: GENESIS_HASH },
    Array.from({ length: count }, (_, i) => draft(`thing.done_${i + 1}`)),
  );
}

const stored = (entries: readonly ChainedEntry[]): StoredEntry[] =>
  entries.map((entry) => ({ payload: entry.payload, hash: entry.hash }));

function verify(
  entries: readonly StoredEntry[],
  checkpoints: CheckpointAnchor[] = [],
  head?: ChainedEntry | null,
) {
  const verifier = createChainVerifier(ORG, checkpoints);
  for (const entry of entries) if (!verifier.push(entry)) break;
  const last = head === null ? undefined : (head ?? entries.at(-1));
  return verifier.finish(last && { seq: last.payload.seq, hash: last.hash });
}

describe('RFC 8785 canonical JSON', () => {
  test('matches the RFC’s example: sorted members, ECMAScript numbers, minimal escapes', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        '"literals": [null, true, false]}',
    );
    assert.equal(
      canonicalJson(input),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('sorts members by UTF-16 code units, as the RFC’s sorting example', () => {
    const input = {
      '\u20ac': 'Euro',
      '\r': 'CR',
      '\ufb33': 'Hebrew',
      '1': 'One',
      '\ud83d\ude00': 'Smiley',
      '\u0080': 'Control',
      '\u00f6': 'o',
    };
    // Read the order off the text: a parsed object would put the integer-like key '1' first.
    const text = canonicalJson(input);
    const order = ['CR', 'One', 'Control', 'o', 'Euro', 'Smiley', 'Hebrew'].map((value) =>
      text.indexOf(`"${value}"`),
    );
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
    assert.ok(order.every((position) => position > 0));
  });
});

describe('hash chain', () => {
  test('each entry points at the hash of the one before, from the genesis hash', () => {
    const entries = chainOf(3);
    assert.deepEqual(
      entries.map((entry) => entry.payload.seq),
      [1, 2, 3],
    );
    assert.equal(entries[0]!.payload.prevHash, GENESIS_HASH);
    assert.equal(entries[1]!.payload.prevHash, entries[0]!.hash);
    assert.equal(entries[2]!.payload.prevHash, entries[1]!.hash);
    for (const entry of entries) assert.equal(entry.hash, entryHash(entry.payload));
  });

  test('the hash is over canonical JSON: member order does not matter, content does', () => {
    const [entry] = chainOf(1);
    const reordered = Object.fromEntries(Object.entries(entry!.payload).reverse()) as unknown as EntryPayload;
    assert.equal(entryHash(reordered), entry!.hash);
    assert.notEqual(entryHash({ ...entry!.payload, action: 'thing.undone' }), entry!.hash);
  });

  test('a sound chain verifies, with its checkpoints', () => {
    const entries = chainOf(5);
    const result = verify(stored(entries), [{ seq: 3, hash: entries[2]!.hash, signatureValid: true }]);
    assert.deepEqual(result, {
      valid: true,
      checkedEntries: 5,
      firstSeq: 1,
      lastSeq: 5,
      checkpointsChecked: 1,
    });
  });

  test('an empty chain with no head is valid', () => {
    assert.equal(verify([], [], null).valid, true);
  });

  test('a changed entry is named as the first broken seq', () => {
    const entries = stored(chainOf(5));
    entries[2] = { ...entries[2]!, payload: { ...entries[2]!.payload, outcome: 'failure' } };
    const result = verify(entries);
    assert.equal(result.valid, false);
    assert.equal(result.firstBrokenSeq, 3);
    assert.equal(result.reason, 'hash_mismatch');
    assert.equal(result.checkedEntries, 3);
  });

  test('an entry rewritten with a recomputed hash breaks the link of the next one', () => {
    const chain = chainOf(4);
    const forged = { ...chain[1]!.payload, action: 'nothing.happened' };
    const entries = stored(chain);
    entries[1] = { payload: forged, hash: entryHash(forged) };
    const result = verify(entries, [], chain.at(-1));
    assert.equal(result.firstBrokenSeq, 3);
    assert.equal(result.reason, 'prev_hash_mismatch');
  });

  test('…and a checkpoint at the rewritten seq names that seq', () => {
    const chain = chainOf(4);
    const forged = { ...chain[1]!.payload, action: 'nothing.happened' };
    const entries = stored(chain);
    entries[1] = { payload: forged, hash: entryHash(forged) };
    const result = verify(entries, [{ seq: 2, hash: chain[1]!.hash, signatureValid: true }], chain.at(-1));
    assert.equal(result.firstBrokenSeq, 2);
    assert.equal(result.reason, 'checkpoint_mismatch');
  });

  test('a deleted entry is named as missing', () => {
    const entries = stored(chainOf(5));
    entries.splice(1, 1);
    const result = verify(entries);
    assert.equal(result.firstBrokenSeq, 2);
    assert.equal(result.reason, 'missing_entries');
  });

  test('deleted newest entries are found through the head or a checkpoint', () => {
    const chain = chainOf(5);
    const truncated = stored(chain).slice(0, 3);
    assert.equal(verify(truncated, [], chain.at(-1)).firstBrokenSeq, 4);
    const withCheckpoint = verify(
      truncated,
      [{ seq: 5, hash: chain[4]!.hash, signatureValid: true }],
      chain[2],
    );
    assert.equal(withCheckpoint.firstBrokenSeq, 4);
    assert.equal(withCheckpoint.reason, 'missing_entries');
  });

  test('a chain may start at a checkpoint (after retention), not anywhere else', () => {
    const chain = chainOf(6);
    const retained = stored(chain).slice(3);
    const anchored = verify(retained, [{ seq: 4, hash: chain[3]!.hash, signatureValid: true }]);
    assert.equal(anchored.valid, true);
    assert.equal(anchored.firstSeq, 4);
    const unanchored = verify(retained);
    assert.equal(unanchored.firstBrokenSeq, 3);
    assert.equal(unanchored.reason, 'unanchored_start');
  });

  test('a checkpoint with a bad signature is named', () => {
    const chain = chainOf(3);
    const result = verify(stored(chain), [{ seq: 2, hash: chain[1]!.hash, signatureValid: false }]);
    assert.equal(result.firstBrokenSeq, 2);
    assert.equal(result.reason, 'checkpoint_signature_invalid');
  });

  test('a head that disagrees with the last entry is broken at the next seq', () => {
    const chain = chainOf(3);
    const verifier = createChainVerifier(ORG, []);
    for (const entry of stored(chain)) verifier.push(entry);
    const result = verifier.finish({ seq: 3, hash: GENESIS_HASH });
    assert.equal(result.firstBrokenSeq, 4);
    assert.equal(result.reason, 'head_mismatch');
  });

  test('an entry of another org is refused', () => {
    const entries = appendToChain('org_other', { seq: 0, hash: GENESIS_HASH }, [draft('thing.done')]);
    assert.equal(verify(stored(entries)).reason, 'org_mismatch');
  });
});

describe('personal data', () => {
  const data = { ip: '203.0.113.7', userAgent: 'curl/8', actorEmail: 'ada@example.com' };
  const salt = 'a'.repeat(64);

  function withPersonalData(personal: StoredEntry['personalData']) {
    const [entry] = appendToChain(ORG, { seq: 0, hash: GENESIS_HASH }, [
      draft('user.signed_in', { personalDataDigest: personalDataDigest(salt, data) }),
    ]);
    return verify([
      { payload: entry!.payload, hash: entry!.hash, ...(personal ? { personalData: personal } : {}) },
    ]);
  }

  test('the digest binds the data while it is there', () => {
    assert.equal(withPersonalData({ ...data, salt, erased: false }).valid, true);
    const changed = withPersonalData({ ...data, ip: '198.51.100.1', salt, erased: false });
    assert.equal(changed.reason, 'personal_data_mismatch');
    assert.equal(changed.firstBrokenSeq, 1);
  });

  test('erased or absent data never breaks verification', () => {
    assert.equal(
      withPersonalData({ ip: null, userAgent: null, actorEmail: null, salt: null, erased: true }).valid,
      true,
    );
    assert.equal(withPersonalData(undefined).valid, true);
  });

  test('the digest depends on the salt, so it reveals nothing once the salt is gone', () => {
    assert.notEqual(personalDataDigest(salt, data), personalDataDigest('b'.repeat(64), data));
  });
});

describe('normalisation', () => {
  test('text PostgreSQL or JSON cannot hold is replaced, and long text is cut', () => {
    assert.equal(storableText('a\u0000b', 10), 'a\uFFFDb');
    assert.equal(storableText('x\ud800y', 10), 'x\uFFFDy');
    assert.equal(storableText('\ud83d\ude00', 10), '\ud83d\ude00');
    assert.equal(storableText('abcdef', 3), 'abc');
    // A cut through a surrogate pair leaves no lone half.
    assert.equal(storableText('a\ud83d\ude00', 2), 'a\uFFFD');
  });

  test('targets keep string values only, up to the key limit', () => {
    assert.equal(normalizeTarget(undefined), null);
    assert.equal(normalizeTarget({ a: undefined }), null);
    assert.deepEqual(normalizeTarget({ id: 'key_1', n: 7 }), { id: 'key_1', n: '7' });
    const many = Object.fromEntries(Array.from({ length: MAX_TARGET_KEYS + 5 }, (_, i) => [`k${i}`, 'v']));
    assert.equal(Object.keys(normalizeTarget(many)!).length, MAX_TARGET_KEYS);
  });

  test('details are stored as JSON, and oversized details are a programmer error', () => {
    assert.deepEqual(normalizeDetails({ when: new Date('2026-01-01T00:00:00Z'), skip: undefined }), {
      when: '2026-01-01T00:00:00.000Z',
    });
    assert.throws(() => normalizeDetails({ blob: 'x'.repeat(MAX_DETAILS_BYTES) }), /at most/);
  });
});
