import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { configWith } from '../../config.ts';
import { createLogger } from '../observability/logger.ts';
import { createSecretBox, MASTER_KEY_FILE, resolveMasterKey } from './secret-box.ts';

test('a sealed secret opens with the same key and context only', () => {
  const box = createSecretBox(randomBytes(32));
  const sealed = box.seal('whsec_abc', 'webhook_endpoint:whe_1');
  assert.doesNotMatch(sealed, /whsec_abc/);
  assert.equal(box.open(sealed, 'webhook_endpoint:whe_1'), 'whsec_abc');
  assert.throws(() => box.open(sealed, 'webhook_endpoint:whe_2'));
  assert.throws(() => createSecretBox(randomBytes(32)).open(sealed, 'webhook_endpoint:whe_1'));
  assert.notEqual(box.seal('same', 'c'), box.seal('same', 'c'), 'a fresh IV every time');
});

test('without KEEL_MASTER_KEY a key is generated once into the data directory, mode 0600', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keel-keys-'));
  const config = configWith({ dataDir });
  const log = createLogger({ level: 'silent', pretty: false });
  const first = resolveMasterKey(config, log);
  const second = resolveMasterKey(config, log);
  assert.deepEqual(first, second);
  assert.equal(first.length, 32);
  assert.equal(statSync(path.join(dataDir, MASTER_KEY_FILE)).mode & 0o777, 0o600);
  assert.equal(readFileSync(path.join(dataDir, MASTER_KEY_FILE), 'utf8').length, 64);
});

test('KEEL_MASTER_KEY wins, in hex or base64', () => {
  const key = randomBytes(32);
  const log = createLogger({ level: 'silent', pretty: false });
  assert.deepEqual(resolveMasterKey(configWith({ masterKey: key.toString('hex') }), log), key);
  assert.deepEqual(resolveMasterKey(configWith({ masterKey: key.toString('base64') }), log), key);
});
