import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, environmentWithDotenv, loadConfig, redactConfig, VARIABLES } from './config.ts';

describe('config', () => {
  test('defaults give the embedded single-machine setup on port 8080', () => {
    const config = loadConfig({});
    assert.equal(config.http.port, 8080);
    assert.equal(config.database.url, undefined);
    assert.equal(config.redis.url, undefined);
    assert.equal(config.database.migrateOnStart, true);
    assert.equal(config.log.level, 'info');
    assert.deepEqual(config.http.corsOrigins, []);
    assert.ok(path.isAbsolute(config.dataDir) && config.dataDir.endsWith('.keel'));
  });

  test('the config is deeply frozen', () => {
    const config = loadConfig({});
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.http));
    assert.throws(() => {
      (config.http as { port: number }).port = 1;
    }, TypeError);
  });

  test('an invalid variable is named in the error', () => {
    assert.throws(
      () => loadConfig({ PORT: 'notaport' }),
      (error: unknown) => error instanceof ConfigError && /PORT must be a whole number/.test(error.message),
    );
    assert.throws(() => loadConfig({ PORT: '70000' }), /PORT must be between 0 and 65535/);
  });

  test('every invalid variable is reported at once', () => {
    try {
      loadConfig({
        PORT: '-1',
        LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://x',
        REDIS_URL: 'not a url',
        CORS_ORIGINS: 'https://ok.example.com,https://bad.example.com/path',
        KEEL_MASTER_KEY: 'short',
        KEEL_MIGRATE_ON_START: 'maybe',
      });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const named = error.problems.map((problem) => problem.split(' ')[0]).sort();
      assert.deepEqual(named, [
        'CORS_ORIGINS',
        'DATABASE_URL',
        'KEEL_MASTER_KEY',
        'KEEL_MIGRATE_ON_START',
        'LOG_LEVEL',
        'PORT',
        'REDIS_URL',
      ]);
    }
  });

  test('valid values are parsed to their types', () => {
    const config = loadConfig({
      PORT: '9000',
      DATABASE_URL: 'postgres://keel:pw@db:5432/keel',
      DATABASE_POOL_SIZE: '25',
      REDIS_URL: 'redis://:secret@cache:6379',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      TRUST_PROXY: 'true',
      KEEL_MASTER_KEY: 'a'.repeat(64),
      KEEL_MIGRATE_ON_START: 'false',
    });
    assert.equal(config.http.port, 9000);
    assert.equal(config.database.poolSize, 25);
    assert.deepEqual(config.http.corsOrigins, ['https://app.example.com', 'http://localhost:5173']);
    assert.equal(config.http.trustProxy, true);
    assert.equal(config.database.migrateOnStart, false);
  });

  test('a .env file is read, and the environment wins over it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keel-env-'));
    writeFileSync(path.join(dir, '.env'), 'PORT=9100\nLOG_LEVEL=debug\n');
    const env = environmentWithDotenv({ LOG_LEVEL: 'warn' }, dir);
    const config = loadConfig(env);
    assert.equal(config.http.port, 9100);
    assert.equal(config.log.level, 'warn');
  });

  test('redaction hides passwords and secrets', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://keel:db-password@db:5432/keel',
      REDIS_URL: 'redis://:redis-password@cache:6379',
      KEEL_MASTER_KEY: 'b'.repeat(64),
      SENTRY_DSN: 'https://publickey@sentry.example.com/1',
    });
    const printed = JSON.stringify(redactConfig(config));
    for (const secret of ['db-password', 'redis-password', 'b'.repeat(64), 'publickey']) {
      assert.ok(!printed.includes(secret), `${secret} is not printed`);
    }
    assert.match(printed, /db:5432/);
  });

  test('mail, public URL and chain RPC variables are parsed and checked', () => {
    const defaults = loadConfig({ PORT: '9001' });
    assert.equal(defaults.http.publicUrl, 'http://localhost:9001');
    assert.equal(defaults.mail.smtpUrl, undefined);
    assert.equal(defaults.mail.from, 'Keel <keel@localhost>');
    assert.deepEqual(defaults.chains.rpcUrls, []);
    const config = loadConfig({
      PUBLIC_URL: 'https://keel.example.com/',
      SMTP_URL: 'smtps://mailer:pw@smtp.example.com:465',
      MAIL_FROM: 'Acme <no-reply@acme.example>',
      CHAIN_RPC_URLS: '1=https://eth.example.com/v2/KEY, 8453=http://127.0.0.1:8545',
    });
    assert.equal(config.http.publicUrl, 'https://keel.example.com');
    assert.equal(config.mail.smtpUrl, 'smtps://mailer:pw@smtp.example.com:465');
    assert.deepEqual(config.chains.rpcUrls, [
      { chainId: 1, url: 'https://eth.example.com/v2/KEY' },
      { chainId: 8453, url: 'http://127.0.0.1:8545' },
    ]);
    const printed = JSON.stringify(redactConfig(config));
    assert.ok(
      !printed.includes(':pw@') && !printed.includes('KEY'),
      'SMTP password and RPC paths are hidden',
    );
    for (const [name, value, message] of [
      ['SMTP_URL', 'http://smtp.example.com', /SMTP_URL must use smtp: or smtps:/],
      ['MAIL_FROM', 'not an address', /MAIL_FROM must be an address/],
      ['PUBLIC_URL', 'ftp://keel.example.com', /PUBLIC_URL must use http: or https:/],
      ['CHAIN_RPC_URLS', 'mainnet=https://x.example', /CHAIN_RPC_URLS .* must look like <chain id>=/],
      ['CHAIN_RPC_URLS', '1=https://a.example,1=https://b.example', /chain 1 is listed twice/],
    ] as const) {
      assert.throws(() => loadConfig({ [name]: value }), message);
    }
  });

  test('.env.example and docs/configuration.md list every variable', () => {
    const root = path.resolve(import.meta.dirname, '../..');
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    const guide = readFileSync(path.join(root, 'docs/configuration.md'), 'utf8');
    for (const name of Object.keys(VARIABLES)) {
      assert.match(example, new RegExp(`^# ?${name}=|^${name}=`, 'm'), `.env.example lists ${name}`);
      assert.match(guide, new RegExp(`\`${name}\``), `docs/configuration.md explains ${name}`);
    }
  });
});
