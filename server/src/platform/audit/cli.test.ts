// `keel audit verify` as an operator runs it: a real child process against DATABASE_URL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { keelEnv, runKeel, tempDir } from '../../../test/process.ts';
import { systemClock } from '../../infra/clock.ts';
import { createDatabase, type Database } from '../../infra/db/database.ts';
import { newId } from '../../infra/ids.ts';
import { createSecretBox } from '../../infra/keystore/secret-box.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { type AuditService, createAuditService } from './service.ts';

const log = createLogger({ level: 'silent', pretty: false });
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

let testDb: TestDatabase;
let database: Database;
let audit: AuditService;
let cwd: string;
const sound = newId('org');
const tampered = newId('org');

before(async () => {
  testDb = await createTestDatabase();
  database = createDatabase({ url: testDb.url, poolSize: 4, log });
  audit = createAuditService({
    database,
    clock: systemClock,
    newId,
    log,
    secretBox: createSecretBox(randomBytes(32)),
  });
  cwd = await tempDir('keel-audit-cli-');
  for (const orgId of [sound, tampered]) {
    for (let i = 0; i < 3; i++) {
      await audit.record(undefined, {
        orgId,
        actor: { kind: 'system' },
        action: `thing.done_${i}`,
        outcome: 'success',
      });
    }
  }
  await audit.checkpoint(sound);
});
after(async () => {
  await database.close();
  await testDb.drop();
});

const verify = (args: string[] = []) =>
  runKeel(['audit', 'verify', ...args], {
    cwd,
    env: keelEnv({ DATABASE_URL: testDb.url, LOG_LEVEL: 'warn' }),
  });

test('keel audit verify prints each org’s chain and exits 0 when all are sound', async () => {
  const result = await verify();
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    new RegExp(`^${sound} ok: 3 entries \\(seq 1-3\\), 1 checkpoints checked$`, 'm'),
  );
  assert.match(result.stdout, new RegExp(`^${tampered} ok: 3 entries`, 'm'));
  assert.match(result.stdout, /^2 audit chains verified, 0 broken$/m);

  const one = await verify(['--org', sound]);
  assert.equal(one.code, 0, one.stderr);
  assert.doesNotMatch(one.stdout, new RegExp(tampered));
  assert.match(one.stdout, /^1 audit chain verified, 0 broken$/m);
});

test('keel audit verify names the first broken seq and exits non-zero', async () => {
  // A superuser changes a row behind the append-only trigger's back.
  const superuser = new pg.Client({ connectionString: testDb.url });
  await superuser.connect();
  try {
    await superuser.query('set session_replication_role = replica');
    await superuser.query(`update audit_entries set outcome = 'failure' where org_id = $1 and seq = 2`, [
      tampered,
    ]);
  } finally {
    await superuser.end();
  }
  const result = await verify();
  assert.equal(result.code, EXIT_FAILURE);
  assert.match(result.stdout, new RegExp(`^${tampered} BROKEN at seq 2 \\(hash_mismatch\\)`, 'm'));
  assert.match(result.stdout, new RegExp(`^${sound} ok:`, 'm'));
  assert.match(result.stdout, /^2 audit chains verified, 1 broken$/m);
  // The sound org alone still passes.
  assert.equal((await verify(['--org', sound])).code, 0);
});

test('keel audit with an unknown subcommand is a usage error', async () => {
  const result = await runKeel(['audit', 'repair'], { cwd, env: keelEnv() });
  assert.equal(result.code, EXIT_USAGE);
  assert.match(result.stderr, /keel audit verify/);
});
