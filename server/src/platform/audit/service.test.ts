import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { createDatabase, type Database } from '../../infra/db/database.ts';
import { newId } from '../../infra/ids.ts';
import { createSecretBox } from '../../infra/keystore/secret-box.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { verifyCheckpoint } from './domain/checkpoint.ts';
import { type AuditRecord, type AuditService, createAuditService } from './service.ts';

const log = createLogger({ level: 'silent', pretty: false });
const DAY_MS = 24 * 60 * 60 * 1000;
const RETENTION_MS = 30 * DAY_MS;

const entry = (orgId: string, action: string, extra: Partial<AuditRecord> = {}): AuditRecord => ({
  orgId,
  actor: { kind: 'api_key', id: 'key_01jd7x8m3q9f2k5v6w7y8z9a0b' },
  action,
  outcome: 'success',
  ...extra,
});

describe('audit log', () => {
  let testDb: TestDatabase;
  let database: Database;
  let audit: AuditService;
  /** A plain connection to run SQL the way an operator (or an attacker) would, outside the service. */
  let sqlClient: pg.Client;
  const clock = manualClock('2026-11-22T00:00:00Z');

  before(async () => {
    testDb = await createTestDatabase();
    database = createDatabase({ url: testDb.url, poolSize: 8, log });
    audit = createAuditService({
      database,
      clock,
      newId,
      log,
      secretBox: createSecretBox(randomBytes(32)),
      retentionMs: RETENTION_MS,
    });
    sqlClient = new pg.Client({ connectionString: testDb.url });
    await sqlClient.connect();
  });
  after(async () => {
    await sqlClient.end();
    await database.close();
    await testDb.drop();
  });

  async function recordMany(orgId: string, count: number, extra: Partial<AuditRecord> = {}) {
    for (let i = 0; i < count; i++) await audit.record(undefined, entry(orgId, `thing.done_${i + 1}`, extra));
  }

  /** Runs `statement` as a superuser with triggers (and foreign keys) off: a change behind the log's back. */
  async function tamper(statement: string, values: unknown[]) {
    const { rows } = await sqlClient.query<{ rolsuper: boolean }>(
      'select rolsuper from pg_roles where rolname = current_user',
    );
    assert.equal(rows[0]!.rolsuper, true, 'the fault tests run as a superuser');
    await sqlClient.query('set session_replication_role = replica');
    try {
      await sqlClient.query(statement, values);
    } finally {
      await sqlClient.query('set session_replication_role = origin');
    }
  }

  test('entries form a gap-free chain per org, and verify accepts it', async () => {
    const a = newId('org');
    const b = newId('org');
    const first = await audit.record(undefined, entry(a, 'api_key.created', { target: { keyId: 'key_1' } }));
    await audit.record(undefined, entry(b, 'api_key.created'));
    const second = await audit.record(undefined, entry(a, 'api_key.revoked', { target: { keyId: 'key_1' } }));
    assert.deepEqual([first.seq, second.seq], [1, 2]);
    const { entries } = await audit.list(a, {}, { limit: 10 });
    assert.deepEqual(
      entries.map((e) => [e.seq, e.action]),
      [
        [2, 'api_key.revoked'],
        [1, 'api_key.created'],
      ],
    );
    assert.equal(entries[0]!.prevHash, entries[1]!.hash);
    assert.equal(entries[0]!.hash, second.hash);
    assert.deepEqual(await audit.verify(a), {
      valid: true,
      checkedEntries: 2,
      firstSeq: 1,
      lastSeq: 2,
      checkpointsChecked: 0,
    });
    assert.equal((await audit.verify(b)).valid, true);
  });

  test('an org with no entries verifies as an empty, valid chain', async () => {
    assert.deepEqual(await audit.verify(newId('org')), {
      valid: true,
      checkedEntries: 0,
      firstSeq: null,
      lastSeq: null,
      checkpointsChecked: 0,
    });
  });

  test('an entry recorded in the caller’s transaction exists exactly when the change commits', async () => {
    const orgId = newId('org');
    await assert.rejects(
      database.transaction(async (tx) => {
        await audit.record(tx, entry(orgId, 'api_key.created'));
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    assert.equal((await audit.list(orgId, {}, { limit: 10 })).entries.length, 0);
    // The head rolled back with it, so the next entry is seq 1 again and the chain is sound.
    const recorded = await database.transaction((tx) => audit.record(tx, entry(orgId, 'api_key.created')));
    assert.equal(recorded.seq, 1);
    assert.equal((await audit.verify(orgId)).valid, true);
  });

  test('a malformed record is a programmer error and writes nothing', async () => {
    const orgId = newId('org');
    await assert.rejects(audit.record(undefined, entry(orgId, '')), /action must be/);
    await assert.rejects(
      audit.record(undefined, entry(orgId, 'api_key.created', { actor: { kind: 'api_key' } })),
      /needs its id/,
    );
    await assert.rejects(
      audit.record(undefined, entry(orgId, 'api_key.created', { details: { blob: 'x'.repeat(10_000) } })),
      /at most/,
    );
    assert.equal((await audit.verify(orgId)).checkedEntries, 0);
  });

  test('concurrent appends from two replicas are serialised per org: no gap, no fork', async () => {
    const orgId = newId('org');
    const replica = createDatabase({ url: testDb.url, poolSize: 8, log });
    const other = createAuditService({ database: replica, clock, newId, log });
    try {
      const perReplica = 25;
      const results = await Promise.all(
        Array.from({ length: perReplica * 2 }, (_, i) =>
          (i % 2 === 0 ? audit : other).record(undefined, entry(orgId, `concurrent.${i}`)),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.seq).sort((x, y) => x - y),
        Array.from({ length: perReplica * 2 }, (_, i) => i + 1),
      );
      const verification = await audit.verify(orgId);
      assert.equal(verification.valid, true);
      assert.equal(verification.checkedEntries, perReplica * 2);
    } finally {
      await replica.close();
    }
  });

  test('the entries table refuses UPDATE, DELETE and TRUNCATE; checkpoints refuse changes too', async () => {
    const orgId = newId('org');
    await recordMany(orgId, 3);
    await audit.checkpoint(orgId); // at seq 3
    await assert.rejects(
      sqlClient.query(`update audit_entries set action = 'x' where org_id = $1`, [orgId]),
      /append-only/,
    );
    await assert.rejects(
      sqlClient.query('delete from audit_entries where org_id = $1', [orgId]),
      /append-only/,
    );
    await assert.rejects(sqlClient.query('truncate audit_entries cascade'), /append-only/);
    await assert.rejects(
      sqlClient.query('update audit_checkpoints set hash = hash where org_id = $1', [orgId]),
      /append-only/,
    );
    await assert.rejects(
      sqlClient.query('delete from audit_checkpoints where org_id = $1', [orgId]),
      /append-only/,
    );
    // Under the retention job's setting, only entries below the latest checkpoint may go.
    await sqlClient.query('begin');
    try {
      await sqlClient.query(`set local keel.audit_prune = 'on'`);
      await assert.rejects(
        sqlClient.query('delete from audit_entries where org_id = $1 and seq = 3', [orgId]),
        /not below the latest checkpoint/,
      );
    } finally {
      await sqlClient.query('rollback');
    }
    await sqlClient.query('begin');
    try {
      await sqlClient.query(`set local keel.audit_prune = 'on'`);
      const deleted = await sqlClient.query('delete from audit_entries where org_id = $1 and seq = 1', [
        orgId,
      ]);
      assert.equal(deleted.rowCount, 1);
    } finally {
      await sqlClient.query('rollback');
    }
    assert.equal((await audit.verify(orgId)).checkedEntries, 3);
  });

  test('an entry changed behind the trigger’s back (as a superuser) is named by verify', async () => {
    const orgId = newId('org');
    await recordMany(orgId, 5);
    await tamper(`update audit_entries set action = 'nothing.happened' where org_id = $1 and seq = 3`, [
      orgId,
    ]);
    const result = await audit.verify(orgId);
    assert.equal(result.valid, false);
    assert.equal(result.firstBrokenSeq, 3);
    assert.equal(result.reason, 'hash_mismatch');
  });

  test('an entry deleted behind the trigger’s back is named as missing', async () => {
    const orgId = newId('org');
    await recordMany(orgId, 4);
    await tamper('delete from audit_entries where org_id = $1 and seq = 2', [orgId]);
    const result = await audit.verify(orgId);
    assert.equal(result.firstBrokenSeq, 2);
    assert.equal(result.reason, 'missing_entries');
  });

  test('personal data lives outside the chain: erasing it leaves the chain valid', async () => {
    const orgId = newId('org');
    const ada = { kind: 'user' as const, id: newId('usr') };
    const bob = { kind: 'user' as const, id: newId('usr') };
    const origin = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0' };
    await audit.record(
      undefined,
      entry(orgId, 'user.signed_in', { actor: ada, ...origin, actorEmail: 'Ada@example.com' }),
    );
    await audit.record(
      undefined,
      entry(orgId, 'user.signed_in', { actor: bob, ...origin, actorEmail: 'bob@example.com' }),
    );
    await audit.record(undefined, entry(orgId, 'api_key.created', { actor: ada, ...origin }));
    await audit.record(
      undefined,
      entry(orgId, 'user.login_failed', {
        actor: { kind: 'anonymous' },
        actorEmail: 'ada@EXAMPLE.com',
        outcome: 'failure',
      }),
    );

    assert.equal(await audit.erasePersonalData(orgId, { actorId: ada.id }), 2);
    assert.equal(await audit.erasePersonalData(orgId, { email: 'ada@example.com' }), 1);

    const { entries } = await audit.list(orgId, {}, { limit: 10 });
    const bySeq = new Map(entries.map((e) => [e.seq, e]));
    for (const seq of [1, 3, 4]) {
      assert.equal(bySeq.get(seq)!.personalData, null);
      assert.equal(bySeq.get(seq)!.personalDataErased, true);
    }
    assert.deepEqual(bySeq.get(2)!.personalData, { ...origin, actorEmail: 'bob@example.com' });
    // The erasures are audited, without the email they were asked for.
    const erasures = entries.filter((e) => e.action === 'audit.personal_data_erased');
    assert.deepEqual(
      erasures.map((e) => [e.target, e.details]),
      [
        [null, { erasedEntries: 1, byEmail: true }],
        [{ actorId: ada.id }, { erasedEntries: 2, byEmail: false }],
      ],
    );
    assert.doesNotMatch(JSON.stringify(erasures), /ada@example/i);
    assert.equal((await audit.verify(orgId)).valid, true);
    const stored = await sqlClient.query('select * from audit_personal_data where org_id = $1 and seq = 1', [
      orgId,
    ]);
    assert.deepEqual(
      [stored.rows[0].salt, stored.rows[0].ip, stored.rows[0].user_agent, stored.rows[0].actor_email],
      [null, null, null, null],
    );
  });

  test('personal data changed behind the log’s back is detected while it is kept', async () => {
    const orgId = newId('org');
    await audit.record(undefined, entry(orgId, 'user.signed_in', { ip: '203.0.113.7' }));
    await sqlClient.query(`update audit_personal_data set ip = '198.51.100.9' where org_id = $1`, [orgId]);
    const result = await audit.verify(orgId);
    assert.equal(result.firstBrokenSeq, 1);
    assert.equal(result.reason, 'personal_data_mismatch');
  });

  test('a checkpoint signs the chain head with the org’s Ed25519 key, once per new head', async () => {
    const orgId = newId('org');
    assert.deepEqual(await audit.checkpoint(orgId), { status: 'empty' });
    await recordMany(orgId, 3);
    const created = await audit.checkpoint(orgId);
    assert.equal(created.status, 'created');
    if (created.status !== 'created') return;
    assert.equal(created.checkpoint.statement.seq, 3);
    const head = (await audit.list(orgId, {}, { limit: 1 })).entries[0]!;
    assert.equal(created.checkpoint.statement.hash, head.hash);
    const exported = (await audit.exportCheckpoint(orgId, 'latest'))!;
    assert.equal(
      verifyCheckpoint(
        created.checkpoint.statement,
        created.checkpoint.signature,
        exported.publicKey.publicKeyPem,
      ),
      true,
    );

    // Nothing new: the same checkpoint. Something new: a new one under the same key.
    assert.equal((await audit.checkpoint(orgId)).status, 'current');
    await recordMany(orgId, 1);
    const next = await audit.checkpoint(orgId);
    assert.equal(next.status, 'created');
    if (next.status !== 'created') return;
    assert.equal(next.checkpoint.statement.seq, 4);
    assert.equal(next.checkpoint.statement.keyId, created.checkpoint.statement.keyId);

    const verification = await audit.verify(orgId);
    assert.equal(verification.valid, true);
    assert.equal(verification.checkpointsChecked, 2);
    // The private key is stored sealed, never as a PEM.
    const { rows } = await sqlClient.query(
      'select sealed_private_key from audit_signing_keys where org_id = $1',
      [orgId],
    );
    assert.doesNotMatch(rows[0].sealed_private_key, /PRIVATE KEY/);
  });

  test('a forged checkpoint signature is named by verify', async () => {
    const orgId = newId('org');
    await recordMany(orgId, 2);
    const created = await audit.checkpoint(orgId);
    assert.equal(created.status, 'created');
    const forged = Buffer.alloc(64, 1).toString('base64url');
    await tamper('update audit_checkpoints set signature = $2 where org_id = $1', [orgId, forged]);
    const result = await audit.verify(orgId);
    assert.equal(result.firstBrokenSeq, 2);
    assert.equal(result.reason, 'checkpoint_signature_invalid');
  });

  test('a broken chain is never checkpointed', async () => {
    const orgId = newId('org');
    await recordMany(orgId, 3);
    await tamper(`update audit_entries set outcome = 'failure' where org_id = $1 and seq = 2`, [orgId]);
    const result = await audit.checkpoint(orgId);
    assert.equal(result.status, 'broken');
    assert.equal((await audit.listCheckpoints(orgId, { limit: 10 })).checkpoints.length, 0);
  });

  test('checkpointAll signs every org whose chain moved, and only those', async () => {
    const moved = newId('org');
    const still = newId('org');
    await recordMany(moved, 1);
    await recordMany(still, 1);
    await audit.checkpointAll();
    await recordMany(moved, 1);
    const run = await audit.checkpointAll();
    assert.ok(run.created >= 1);
    assert.equal((await audit.listCheckpoints(moved, { limit: 10 })).checkpoints.length, 2);
    assert.equal((await audit.listCheckpoints(still, { limit: 10 })).checkpoints.length, 1);
  });

  test('retention prunes only below a checkpoint made before the cutoff; the rest still verifies', async () => {
    const orgId = newId('org');
    const unchecked = newId('org');
    clock.set('2027-01-01T00:00:00Z');
    await recordMany(orgId, 5, { ip: '203.0.113.7' });
    await recordMany(unchecked, 3);
    await audit.checkpoint(orgId); // at seq 5, on 1 January
    clock.advance(10 * DAY_MS);
    await recordMany(orgId, 3);
    await audit.checkpoint(orgId); // at seq 8, on 11 January

    // 1. Before the first checkpoint is older than the retention period, nothing goes.
    clock.set(new Date(Date.parse('2027-01-01T00:00:00Z') + RETENTION_MS - DAY_MS));
    await audit.pruneExpired();
    assert.equal((await audit.verify(orgId)).firstSeq, 1);

    // 2. Once it is, entries below it go; the checkpoint's own entry stays as the chain's anchor.
    clock.set(new Date(Date.parse('2027-01-01T00:00:00Z') + RETENTION_MS + DAY_MS));
    assert.equal(await audit.pruneExpired(), 4);
    const verification = await audit.verify(orgId);
    assert.equal(verification.valid, true);
    assert.equal(verification.firstSeq, 5);
    assert.equal(verification.checkedEntries, 4);
    const { rows } = await sqlClient.query(
      'select count(*)::int as n from audit_personal_data where org_id = $1',
      [orgId],
    );
    assert.equal(rows[0].n, 1, 'the personal data of pruned entries went with them');

    // 3. An org without a checkpoint keeps everything, however old.
    assert.equal((await audit.verify(unchecked)).checkedEntries, 3);
    assert.equal((await audit.exportCheckpoint(orgId, 'latest'))!.retainedFromSeq, 5);
    clock.set('2026-11-22T00:00:00Z');
  });

  test('list filters by actor, action, target, outcome and time, and pages with a cursor', async () => {
    const orgId = newId('org');
    const user = { kind: 'user' as const, id: newId('usr') };
    clock.set('2026-11-22T00:00:00Z');
    await audit.record(undefined, entry(orgId, 'api_key.created', { target: { keyId: 'key_a' } }));
    clock.advance(60_000);
    await audit.record(
      undefined,
      entry(orgId, 'member.role_changed', { actor: user, target: { userId: 'usr_x' } }),
    );
    clock.advance(60_000);
    await audit.record(
      undefined,
      entry(orgId, 'api_key.revoked', { target: { keyId: 'key_a' }, outcome: 'failure' }),
    );
    clock.advance(60_000);
    await audit.record(undefined, entry(orgId, 'api_key.created', { target: { keyId: 'key_b' } }));

    const seqs = async (filter: Parameters<AuditService['list']>[1]) =>
      (await audit.list(orgId, filter, { limit: 10 })).entries.map((e) => e.seq);
    assert.deepEqual(await seqs({ actorId: user.id }), [2]);
    assert.deepEqual(await seqs({ actorKind: 'api_key' }), [4, 3, 1]);
    assert.deepEqual(await seqs({ actions: ['api_key.created', 'api_key.revoked'] }), [4, 3, 1]);
    assert.deepEqual(await seqs({ target: 'key_a' }), [3, 1]);
    assert.deepEqual(await seqs({ outcome: 'failure' }), [3]);
    assert.deepEqual(
      await seqs({ since: new Date('2026-11-22T00:01:00Z'), until: new Date('2026-11-22T00:03:00Z') }),
      [3, 2],
    );

    const first = await audit.list(orgId, {}, { limit: 3 });
    assert.deepEqual(
      first.entries.map((e) => e.seq),
      [4, 3, 2],
    );
    const second = await audit.list(orgId, {}, { limit: 3, cursor: first.nextCursor! });
    assert.deepEqual(
      second.entries.map((e) => e.seq),
      [1],
    );
    assert.equal(second.nextCursor, null);
    await assert.rejects(audit.list(orgId, {}, { limit: 3, cursor: 'bm9wZQ' }), /cursor is not valid/);
  });

  test('export yields entries oldest first, in batches, up to the limit', async () => {
    const orgId = newId('org');
    await recordMany(orgId, 5);
    const seqs: number[] = [];
    for await (const exported of audit.exportEntries(orgId, { fromSeq: 2 }, 3)) seqs.push(exported.seq);
    assert.deepEqual(seqs, [2, 3, 4]);
  });

  test('one org never sees another org’s entries or checkpoints', async () => {
    const a = newId('org');
    const b = newId('org');
    await recordMany(a, 2);
    const created = await audit.checkpoint(a);
    assert.equal(created.status, 'created');
    if (created.status !== 'created') return;
    assert.equal((await audit.list(b, {}, { limit: 10 })).entries.length, 0);
    assert.equal(await audit.exportCheckpoint(b, { id: created.checkpoint.id }), undefined);
    assert.equal(await audit.exportCheckpoint(b, 'latest'), undefined);
    assert.equal((await audit.listCheckpoints(b, { limit: 10 })).checkpoints.length, 0);
    const exported: unknown[] = [];
    for await (const line of audit.exportEntries(b, {}, 100)) exported.push(line);
    assert.deepEqual(exported, []);
  });
});
