import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { test } from 'node:test';
import {
  checkpointMessage,
  checkpointStatement,
  describePublicKey,
  generateSigningKeyPair,
  signCheckpoint,
  verifyCheckpoint,
} from './checkpoint.ts';

const statement = checkpointStatement({
  orgId: 'org_01jd7x8m3q9f2k5v6w7y8z9a0b',
  seq: 42,
  hash: 'ab'.repeat(32),
  createdAt: new Date('2026-11-22T10:00:00Z'),
  keyId: 'ask_01jd7x8m3q9f2k5v6w7y8z9a0b',
});

test('a checkpoint signature verifies under its public key and no other', () => {
  const pair = generateSigningKeyPair();
  const signature = signCheckpoint(statement, pair.privateKeyPem);
  assert.equal(verifyCheckpoint(statement, signature, pair.publicKeyPem), true);
  assert.equal(verifyCheckpoint(statement, signature, generateSigningKeyPair().publicKeyPem), false);
});

test('a signature does not cover a changed statement, and a garbled one is simply invalid', () => {
  const pair = generateSigningKeyPair();
  const signature = signCheckpoint(statement, pair.privateKeyPem);
  assert.equal(verifyCheckpoint({ ...statement, seq: 43 }, signature, pair.publicKeyPem), false);
  assert.equal(
    verifyCheckpoint({ ...statement, hash: 'cd'.repeat(32) }, signature, pair.publicKeyPem),
    false,
  );
  assert.equal(verifyCheckpoint(statement, 'not a signature', pair.publicKeyPem), false);
});

test('the signed bytes are the canonical JSON of the statement, checkable from the JWK alone', () => {
  const pair = generateSigningKeyPair();
  const signature = signCheckpoint(statement, pair.privateKeyPem);
  assert.equal(
    checkpointMessage(statement).toString(),
    `{"createdAt":"2026-11-22T10:00:00.000Z","hash":"${'ab'.repeat(32)}","keyId":"ask_01jd7x8m3q9f2k5v6w7y8z9a0b",` +
      `"kind":"keel.audit.checkpoint","orgId":"org_01jd7x8m3q9f2k5v6w7y8z9a0b","seq":42,"version":1}`,
  );
  const { jwk, fingerprint } = describePublicKey(pair.publicKeyPem);
  assert.match(fingerprint, /^[0-9a-f]{64}$/);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  assert.equal(verify(null, checkpointMessage(statement), key, Buffer.from(signature, 'base64url')), true);
});
