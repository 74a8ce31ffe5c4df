import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import canonicalize from 'canonicalize';
import pg from 'pg';
import { createOrgWithApiKey, createUserSession } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { assembleModules, systemJobs } from '../../app.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { AUDIT_CHECKPOINT_JOB, AUDIT_PRUNE_JOB, type createAuditModule } from './index.ts';

type AuditModule = ReturnType<typeof createAuditModule>;
type Org = Awaited<ReturnType<typeof createOrgWithApiKey>>;

function auditOf(app: App): AuditModule {
  return assembleModules(app.runtime).find((module) => module.name === 'audit') as AuditModule;
}

interface ListedEntry {
  seq: number;
  actor: { kind: string; id: string | null };
  action: string;
  target: Record<string, string> | null;
  outcome: string;
  status: number | null;
  requestId: string | null;
  personalData: Record<string, string | null> | null;
}

interface Problem {
  code: string;
  status: number;
  errors?: Array<{ path: string; in: string }>;
}

/**
 * A third party's verifier: it uses only the checkpoint export, the JSONL export and a JCS
 * implementation with node:crypto, exactly as docs/audit.md describes. Nothing from Keel.
 */
function verifyAsThirdParty(
  exported: {
    checkpoint: { statement: Record<string, unknown> & { seq: number; hash: string }; signature: string };
    publicKey: { publicKeyPem: string; jwk: { x: string }; fingerprint: string };
  },
  jsonl: string,
  pinnedFingerprint: string,
): { signed: number; after: number } {
  // 1. The key is the one pinned earlier, and the checkpoint is signed by it.
  const rawKey = Buffer.from(exported.publicKey.jwk.x, 'base64url');
  assert.equal(createHash('sha256').update(rawKey).digest('hex'), pinnedFingerprint);
  const publicKey = createPublicKey(exported.publicKey.publicKeyPem);
  const message = Buffer.from(canonicalize(exported.checkpoint.statement)!, 'utf8');
  assert.ok(
    verify(null, message, publicKey, Buffer.from(exported.checkpoint.signature, 'base64url')),
    'checkpoint signature',
  );
  // 2. Each line's payload hashes to its hash and links to the line before; the line at the
  //    checkpoint's seq has the signed hash, which vouches for every line up to it.
  const lines = jsonl
    .trim()
    .split('\n')
    .map(
      (line) => JSON.parse(line) as { seq: number; hash: string; payload: { seq: number; prevHash: string } },
    );
  let previous: { seq: number; hash: string } | undefined;
  let anchored = false;
  let signed = 0;
  for (const line of lines) {
    const hash = createHash('sha256').update(canonicalize(line.payload)!, 'utf8').digest('hex');
    assert.equal(hash, line.hash, `hash of seq ${line.seq}`);
    assert.equal(line.payload.seq, line.seq);
    if (previous) {
      assert.equal(line.seq, previous.seq + 1, 'no gap');
      assert.equal(line.payload.prevHash, previous.hash, `link of seq ${line.seq}`);
    } else if (line.seq === 1) {
      assert.equal(line.payload.prevHash, '0'.repeat(64));
    }
    if (line.seq === exported.checkpoint.statement.seq) {
      assert.equal(line.hash, exported.checkpoint.statement.hash, 'the checkpoint signed this entry');
      anchored = true;
    }
    if (line.seq <= exported.checkpoint.statement.seq) signed++;
    previous = line;
  }
  assert.ok(anchored, 'the export reaches the checkpoint');
  return { signed, after: lines.length - signed };
}

describe('audit routes', () => {
  let testDb: TestDatabase;
  let test_: TestApp;
  let app: App;
  let audit: AuditModule;
  let orgA: Org;
  let orgB: Org;

  before(async () => {
    testDb = await createTestDatabase();
    test_ = await buildTestApp(testDb);
    app = test_.app;
    audit = auditOf(app);
    orgA = await createOrgWithApiKey(app);
    orgB = await createOrgWithApiKey(app);
  });
  after(async () => {
    await test_.close();
    await testDb.drop();
  });

  async function entries(org: Org, query = '') {
    await audit.idle();
    const response = await app.inject({
      method: 'GET',
      url: `/v1/audit/entries?limit=100${query}`,
      headers: org.headers,
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json<{ data: ListedEntry[]; nextCursor: string | null }>().data;
  }

  async function createKey(org: Org, name = 'audited key') {
    return app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { ...org.headers, 'user-agent': 'audit-test/1.0', 'x-request-id': 'req-audit-test-0001' },
      payload: { name, scopes: ['events:read'] },
    });
  }

  describe('the HTTP hook', () => {
    test('a mutating API call is recorded with its actor, target, request id, outcome and origin', async () => {
      const created = await createKey(orgA);
      assert.equal(created.statusCode, 201, created.body);
      const keyId = created.json<{ apiKey: { id: string } }>().apiKey.id;
      const [entry] = await entries(orgA, `&action=${encodeURIComponent('api_key.created')}`);
      assert.deepEqual(entry!.actor, { kind: 'api_key', id: orgA.keyId });
      assert.equal(entry!.outcome, 'success');
      assert.equal(entry!.status, 201);
      assert.equal(entry!.requestId, 'req-audit-test-0001');
      assert.deepEqual(entry!.target, { location: `/v1/api-keys/${keyId}` });
      assert.deepEqual(entry!.personalData, {
        ip: '127.0.0.1',
        userAgent: 'audit-test/1.0',
        actorEmail: null,
      });

      const revoked = await app.inject({
        method: 'DELETE',
        url: `/v1/api-keys/${keyId}`,
        headers: orgA.headers,
      });
      assert.ok(revoked.statusCode < 300, revoked.body);
      const [revocation] = await entries(
        orgA,
        `&target=${keyId}&action=${encodeURIComponent('api_key.revoked')}`,
      );
      assert.deepEqual(revocation!.target, { keyId });
    });

    test('a session’s call is recorded under the signed-in user', async () => {
      const user = await createUserSession(app);
      const response = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: user.headers,
        payload: { name: 'by a person', scopes: ['events:read'] },
      });
      assert.equal(response.statusCode, 201, response.body);
      await audit.idle();
      const { entries: recorded } = await audit.service.list(
        user.orgId,
        { actions: ['api_key.created'] },
        { limit: 10 },
      );
      assert.deepEqual(recorded[0]!.actor, { kind: 'user', id: user.userId });
    });

    test('a refused mutating call is recorded as a failure', async () => {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: orgA.headers,
        payload: { name: 'x', scopes: ['no:such-permission'], extra: true },
      });
      assert.equal(response.statusCode, 400);
      const [entry] = await entries(orgA, '&outcome=failure');
      assert.equal(entry!.action, 'api_key.created');
      assert.equal(entry!.status, 400);
    });

    test('reads and calls without credentials are not recorded', async () => {
      const before = (await entries(orgB)).length;
      const anonymous = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        payload: { name: 'x', scopes: [] },
      });
      assert.equal(anonymous.statusCode, 401);
      await app.inject({ method: 'GET', url: '/v1/audit/entries', headers: orgB.headers });
      assert.equal((await entries(orgB)).length, before);
    });
  });

  describe('GET /v1/audit/entries', () => {
    test('lists the org’s entries newest first, filtered, with a cursor', async () => {
      const orgId = orgA.orgId;
      for (const action of ['settings.changed', 'settings.changed', 'role.changed'])
        await audit.service.record(undefined, {
          orgId,
          actor: { kind: 'system' },
          action,
          outcome: 'success',
        });
      const page = await app.inject({
        method: 'GET',
        url: '/v1/audit/entries?action=settings.changed&limit=1',
        headers: orgA.headers,
      });
      assert.equal(page.statusCode, 200);
      const first = page.json<{ data: Array<{ seq: number; action: string }>; nextCursor: string }>();
      assert.equal(first.data.length, 1);
      assert.equal(first.data[0]!.action, 'settings.changed');
      const next = await app.inject({
        method: 'GET',
        url: `/v1/audit/entries?action=settings.changed&limit=1&cursor=${first.nextCursor}`,
        headers: orgA.headers,
      });
      const second = next.json<{ data: Array<{ seq: number }> }>();
      assert.equal(second.data.length, 1);
      assert.ok(second.data[0]!.seq < first.data[0]!.seq);
    });

    test('rejects bad filters and cursors with a problem naming each field', async () => {
      const response = await app.inject({
        method: 'GET',
        url: '/v1/audit/entries?limit=1000&outcome=maybe&since=yesterday&colour=red',
        headers: orgA.headers,
      });
      assert.equal(response.statusCode, 400);
      assert.match(response.headers['content-type'] as string, /application\/problem\+json/);
      const problem = response.json<Problem>();
      assert.equal(problem.code, 'VALIDATION_FAILED');
      const paths = problem.errors!.map((error) => error.path);
      for (const path of ['/limit', '/since', '/colour'])
        assert.ok(paths.includes(path), `${path} in ${paths}`);
      const cursor = await app.inject({
        method: 'GET',
        url: '/v1/audit/entries?cursor=bm9wZQ',
        headers: orgA.headers,
      });
      assert.equal(cursor.statusCode, 400);
      assert.equal(cursor.json<Problem>().errors![0]!.path, '/cursor');
    });

    test('needs credentials and the audit:read permission', async () => {
      const anonymous = await app.inject({ method: 'GET', url: '/v1/audit/entries' });
      assert.equal(anonymous.statusCode, 401);
      assert.equal(anonymous.json<Problem>().code, 'UNAUTHENTICATED');
      const narrow = await createOrgWithApiKey(app, { permissions: ['events:read'] });
      const forbidden = await app.inject({
        method: 'GET',
        url: '/v1/audit/entries',
        headers: narrow.headers,
      });
      assert.equal(forbidden.statusCode, 403);
    });

    test('never returns another org’s entries', async () => {
      await audit.service.record(undefined, {
        orgId: orgA.orgId,
        actor: { kind: 'system' },
        action: 'only.in_a',
        outcome: 'success',
      });
      const seen = await entries(orgB, '&action=only.in_a');
      assert.deepEqual(seen, []);
      for (const entry of await entries(orgB)) assert.notEqual(entry.actor.id, orgA.keyId);
    });
  });

  describe('GET /v1/audit/export', () => {
    test('streams JSON Lines oldest first, with the limit in a header', async () => {
      await createKey(orgA, 'for export');
      await audit.idle();
      const response = await app.inject({
        method: 'GET',
        url: '/v1/audit/export?format=jsonl&limit=3',
        headers: orgA.headers,
      });
      assert.equal(response.statusCode, 200);
      assert.match(response.headers['content-type'] as string, /^application\/jsonl/);
      assert.equal(response.headers['keel-export-limit'], '3');
      assert.match(
        response.headers['content-disposition'] as string,
        /attachment; filename="audit-org_.*\.jsonl"/,
      );
      const lines = response.body
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      assert.deepEqual(
        lines.map((line) => line.seq),
        [1, 2, 3],
      );
      assert.deepEqual(Object.keys(lines[0]).sort(), ['hash', 'payload', 'personalData', 'seq']);
    });

    test('streams CSV with the same filters', async () => {
      const response = await app.inject({
        method: 'GET',
        url: `/v1/audit/export?format=csv&action=${encodeURIComponent('api_key.created')}`,
        headers: orgA.headers,
      });
      assert.equal(response.statusCode, 200);
      assert.match(response.headers['content-type'] as string, /^text\/csv/);
      const [header, ...rows] = response.body.trimEnd().split('\r\n');
      assert.match(header!, /^seq,occurred_at,actor_kind,actor_id,action,/);
      assert.ok(rows.length >= 2);
      for (const row of rows) assert.match(row, /,api_key\.created,/);
    });

    test('rejects an unknown format or a limit above the maximum', async () => {
      const response = await app.inject({
        method: 'GET',
        url: '/v1/audit/export?format=xml&limit=100001',
        headers: orgA.headers,
      });
      assert.equal(response.statusCode, 400);
      const paths = response.json<Problem>().errors!.map((error) => error.path);
      assert.ok(paths.includes('/format') && paths.includes('/limit'), String(paths));
    });

    test('needs credentials, and exports only the caller’s org', async () => {
      assert.equal((await app.inject({ method: 'GET', url: '/v1/audit/export' })).statusCode, 401);
      const response = await app.inject({ method: 'GET', url: '/v1/audit/export', headers: orgB.headers });
      assert.equal(response.statusCode, 200);
      for (const line of response.body.trim().split('\n').filter(Boolean))
        assert.equal(JSON.parse(line).payload.orgId, orgB.orgId);
    });
  });

  describe('GET /v1/audit/verification', () => {
    test('reports a sound chain, then names the first seq changed behind the trigger’s back', async () => {
      const org = await createOrgWithApiKey(app);
      for (let i = 0; i < 4; i++) await createKey(org, `key ${i}`);
      await audit.idle();
      const sound = await app.inject({ method: 'GET', url: '/v1/audit/verification', headers: org.headers });
      assert.equal(sound.statusCode, 200);
      assert.deepEqual(sound.json(), {
        valid: true,
        checkedEntries: 4,
        firstSeq: 1,
        lastSeq: 4,
        checkpointsChecked: 0,
      });

      const superuser = new pg.Client({ connectionString: testDb.url });
      await superuser.connect();
      try {
        await superuser.query('set session_replication_role = replica');
        await superuser.query(`update audit_entries set status = 200 where org_id = $1 and seq = 2`, [
          org.orgId,
        ]);
      } finally {
        await superuser.end();
      }
      const broken = await app.inject({ method: 'GET', url: '/v1/audit/verification', headers: org.headers });
      assert.equal(broken.statusCode, 200);
      assert.deepEqual(
        { ...broken.json<Record<string, unknown>>(), detail: undefined },
        {
          valid: false,
          checkedEntries: 2,
          firstSeq: 1,
          lastSeq: 1,
          checkpointsChecked: 0,
          firstBrokenSeq: 2,
          reason: 'hash_mismatch',
          detail: undefined,
        },
      );
      // Another org's chain is its own: it still verifies.
      const other = await app.inject({ method: 'GET', url: '/v1/audit/verification', headers: orgB.headers });
      assert.equal(other.json<{ valid: boolean }>().valid, true);
    });

    test('needs credentials', async () => {
      const response = await app.inject({ method: 'GET', url: '/v1/audit/verification' });
      assert.equal(response.statusCode, 401);
    });
  });

  describe('checkpoints', () => {
    test('lists signed checkpoints and exports one, by id or as latest', async () => {
      const first = await audit.service.checkpoint(orgA.orgId);
      assert.equal(first.status, 'created');
      await createKey(orgA, 'after the first checkpoint');
      await audit.idle();
      const second = await audit.service.checkpoint(orgA.orgId);
      assert.equal(second.status, 'created');
      if (first.status !== 'created' || second.status !== 'created') return;

      const list = await app.inject({
        method: 'GET',
        url: '/v1/audit/checkpoints?limit=1',
        headers: orgA.headers,
      });
      assert.equal(list.statusCode, 200);
      const page = list.json<{ data: Array<{ id: string; seq: number }>; nextCursor: string }>();
      assert.deepEqual(
        page.data.map((c) => c.id),
        [second.checkpoint.id],
      );
      const older = await app.inject({
        method: 'GET',
        url: `/v1/audit/checkpoints?limit=1&cursor=${page.nextCursor}`,
        headers: orgA.headers,
      });
      assert.deepEqual(
        older.json<{ data: Array<{ id: string }> }>().data.map((c) => c.id),
        [first.checkpoint.id],
      );

      const latest = await app.inject({
        method: 'GET',
        url: '/v1/audit/checkpoints/latest/export',
        headers: orgA.headers,
      });
      assert.equal(latest.statusCode, 200, latest.body);
      assert.equal(latest.json<{ checkpoint: { id: string } }>().checkpoint.id, second.checkpoint.id);
      const byId = await app.inject({
        method: 'GET',
        url: `/v1/audit/checkpoints/${first.checkpoint.id}/export`,
        headers: orgA.headers,
      });
      assert.equal(byId.statusCode, 200);
      assert.equal(
        byId.json<{ checkpoint: { seq: number } }>().checkpoint.seq,
        first.checkpoint.statement.seq,
      );
    });

    test('a third party verifies the exported chain with the public key alone', async () => {
      const org = await createOrgWithApiKey(app);
      for (let i = 0; i < 3; i++) await createKey(org, `key ${i}`);
      await audit.idle();
      assert.equal((await audit.service.checkpoint(org.orgId)).status, 'created');
      for (let i = 0; i < 2; i++) await createKey(org, `later key ${i}`);
      await audit.idle();

      // What the third party is handed: two HTTP responses and, from an earlier export, a pinned fingerprint.
      const checkpointExport = (
        await app.inject({ method: 'GET', url: '/v1/audit/checkpoints/latest/export', headers: org.headers })
      ).json();
      const jsonl = (
        await app.inject({ method: 'GET', url: '/v1/audit/export?format=jsonl', headers: org.headers })
      ).body;
      const pinned = checkpointExport.publicKey.fingerprint;
      assert.deepEqual(verifyAsThirdParty(checkpointExport, jsonl, pinned), { signed: 3, after: 2 });

      // A changed line, a forged signature or another key is caught by the same procedure.
      const lines = jsonl.trim().split('\n');
      const changed = JSON.parse(lines[1]!);
      changed.payload.outcome = 'failure';
      lines[1] = JSON.stringify(changed);
      assert.throws(() => verifyAsThirdParty(checkpointExport, lines.join('\n'), pinned), /hash of seq 2/);
      const forged = structuredClone(checkpointExport);
      forged.checkpoint.statement.seq = 2;
      assert.throws(() => verifyAsThirdParty(forged, jsonl, pinned), /checkpoint signature/);
      assert.throws(() => verifyAsThirdParty(checkpointExport, jsonl, '00'.repeat(32)));
    });

    test('an unknown checkpoint, another org’s checkpoint, or none yet answer 404', async () => {
      const latestA = await audit.service.exportCheckpoint(orgA.orgId, 'latest');
      assert.ok(latestA);
      for (const [org, url] of [
        [orgB, `/v1/audit/checkpoints/${latestA.checkpoint.id}/export`],
        [orgA, '/v1/audit/checkpoints/acp_01jd7x8m3q9f2k5v6w7y8z9a0b/export'],
        [await createOrgWithApiKey(app), '/v1/audit/checkpoints/latest/export'],
      ] as const) {
        const response = await app.inject({ method: 'GET', url, headers: org.headers });
        assert.equal(response.statusCode, 404, url);
        assert.equal(response.json<Problem>().code, 'AUDIT_CHECKPOINT_NOT_FOUND');
      }
      const list = await app.inject({ method: 'GET', url: '/v1/audit/checkpoints', headers: orgB.headers });
      for (const checkpoint of list.json<{ data: Array<{ statement: { orgId: string } }> }>().data)
        assert.equal(checkpoint.statement.orgId, orgB.orgId);
    });

    test('need credentials, and reject bad paging', async () => {
      assert.equal((await app.inject({ method: 'GET', url: '/v1/audit/checkpoints' })).statusCode, 401);
      assert.equal(
        (await app.inject({ method: 'GET', url: '/v1/audit/checkpoints/latest/export' })).statusCode,
        401,
      );
      const bad = await app.inject({
        method: 'GET',
        url: '/v1/audit/checkpoints?limit=0',
        headers: orgA.headers,
      });
      assert.equal(bad.statusCode, 400);
    });
  });

  test('the scheduled jobs checkpoint every org whose chain moved, and prune without error', async () => {
    const org = await createOrgWithApiKey(app);
    await createKey(org);
    await audit.idle();
    const jobs = new Map(systemJobs(app.runtime).map((job) => [job.name, job]));
    const checkpointJob = jobs.get(AUDIT_CHECKPOINT_JOB)!;
    const pruneJob = jobs.get(AUDIT_PRUNE_JOB)!;
    assert.ok(checkpointJob.cron && pruneJob.cron);
    const context = { log: app.runtime.log, jobId: '1', attempt: 1 };
    await checkpointJob.handler({}, context);
    await pruneJob.handler({}, context);
    const { checkpoints } = await audit.service.listCheckpoints(org.orgId, { limit: 10 });
    assert.equal(checkpoints.length, 1);
    assert.equal(checkpoints[0]!.statement.seq, 1);
  });

  test('every audit operation is in the OpenAPI document', async () => {
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { operationId: string }>>;
    }>();
    const operations = Object.values(document.paths).flatMap((methods) =>
      Object.values(methods).map((operation) => operation.operationId),
    );
    for (const operationId of [
      'listAuditEntries',
      'exportAuditEntries',
      'verifyAuditChain',
      'listAuditCheckpoints',
      'exportAuditCheckpoint',
    ])
      assert.ok(operations.includes(operationId), operationId);
  });
});
