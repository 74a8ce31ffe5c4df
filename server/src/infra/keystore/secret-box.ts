import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config.ts';
import type { Logger } from '../observability/logger.ts';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_FILE = 'master.key';

/**
 * Envelope for secrets Keel must use again (webhook signing secrets, signing keys): AES-256-GCM
 * under the master key, with a context string bound in as associated data, so a sealed value
 * copied to another row or purpose fails to open.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

export function createSecretBox(masterKey: Buffer): SecretBox {
  if (masterKey.length !== MASTER_KEY_BYTES)
    throw new Error(`the master key must be ${MASTER_KEY_BYTES} bytes`);
  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
      cipher.setAAD(Buffer.from(context));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url')}`;
    },
    open(sealed, context) {
      const [version, body] = sealed.split('.');
      if (version !== VERSION || !body) throw new Error('not a sealed secret');
      const bytes = Buffer.from(body, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', masterKey, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    },
  };
}

export function parseMasterKey(value: string): Buffer {
  return /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
}

/**
 * KEEL_MASTER_KEY when set. Otherwise a key generated once into KEEL_DATA_DIR (mode 0600): right
 * for one machine; replicas sharing a database must share KEEL_MASTER_KEY instead.
 */
export function resolveMasterKey(config: Config, log: Logger): Buffer {
  if (config.masterKey) return parseMasterKey(config.masterKey);
  const file = path.join(config.dataDir, MASTER_KEY_FILE);
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(MASTER_KEY_BYTES).toString('hex'), { mode: 0o600, flag: 'wx' });
    log.info({ file }, 'generated a master key: back it up with the data directory');
  }
  if (
    config.database.url &&
    !config.database.url.includes('127.0.0.1') &&
    !config.database.url.includes('localhost')
  ) {
    log.warn('KEEL_MASTER_KEY is not set: every replica sharing this database must use the same key');
  }
  return parseMasterKey(readFileSync(file, 'utf8').trim());
}
