import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { type PassportStandIn, startPassportStandIn } from './testing/stand-ins.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Fixture = Awaited<ReturnType<typeof createOrgWithApiKey>>;

const NODE_KEY = Buffer.from(ed25519.getPublicKey(ed25519.utils.randomPrivateKey())).toString('base64');
const ADDRESS = '0x2C1E111d7C3adc823B5fA3af3f07EB62831C3c5a';

describe('identity routes: contract, validation, authentication and tenancy', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let passport: PassportStandIn;
  let owner: Fixture;
  let reader: { headers: Record<string, string> };
  let outsider: { headers: Record<string, string> };
  let stranger: Fixture;
  let subjectId: string;
  let verificationId: string;

  const inject = (method: Method, url: string, headers: Record<string, string> = {}, payload?: unknown) =>
    keel.app.inject({ method, url, headers, payload: payload as object });

  before(async () => {
    database = await createTestDatabase();
    passport = await startPassportStandIn({ apiKey: 'k', scorerIds: ['7'] });
    keel = await buildTestApp(database, { config: { webhooks: { ssrfAllowlist: ['127.0.0.1'] } } });
    owner = await createOrgWithApiKey(keel.app);
    // The reader's key and the outsider's key act in the owner's org, with fewer permissions.
    reader = await keyIn(owner, ['identity:read']);
    outsider = await keyIn(owner, ['webhooks:read']);
    stranger = await createOrgWithApiKey(keel.app);
  });
  after(async () => {
    await keel.close();
    await passport.close();
    await database.drop();
  });

  /** A key of `org`'s org holding only `scopes`. */
  async function keyIn(org: Fixture, scopes: string[]): Promise<{ headers: Record<string, string> }> {
    const response = await inject('POST', '/v1/api-keys', org.headers, {
      name: 'scoped',
      environment: 'test',
      scopes,
    });
    assert.equal(response.statusCode, 201, response.body);
    return { headers: { authorization: `Bearer ${response.json().secret as string}` } };
  }

  test('should create a subject, return the same one for a known externalId, get it and list it', async () => {
    const created = await inject('POST', '/v1/identity/subjects', owner.headers, {
      externalId: 'user-1',
      metadata: { plan: 'pro' },
    });
    assert.equal(created.statusCode, 201, created.body);
    subjectId = created.json().id;
    assert.match(subjectId, /^sbj_/);
    const again = await inject('POST', '/v1/identity/subjects', owner.headers, { externalId: 'user-1' });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, subjectId);
    const got = await inject('GET', `/v1/identity/subjects/${subjectId}`, reader.headers);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json().metadata, { plan: 'pro' });
    const list = await inject('GET', '/v1/identity/subjects?limit=1', owner.headers);
    assert.equal(list.json().data[0].id, subjectId);
  });

  test('should store a provider configuration without ever returning its API key', async () => {
    const put = await inject('PUT', '/v1/identity/providers/passport', owner.headers, {
      baseUrl: passport.url,
      apiKey: 'k',
      scorerId: '7',
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().hasApiKey, true);
    assert.ok(!put.body.includes('"k"'), 'the key is not in the answer');
    const row = await keel.runtime.database.db
      .selectFrom('identity_provider_configs')
      .select('api_key_sealed')
      .where('org_id', '=', owner.orgId)
      .executeTakeFirstOrThrow();
    assert.ok(row.api_key_sealed && !row.api_key_sealed.includes('k"'), 'stored sealed');
    // Updating other fields keeps the stored key.
    const update = await inject('PUT', '/v1/identity/providers/passport', owner.headers, {
      baseUrl: passport.url,
      scorerId: '7',
      timeoutMs: 800,
    });
    assert.equal(update.json().hasApiKey, true);
    assert.equal(update.json().timeoutMs, 800);
    const list = await inject('GET', '/v1/identity/providers', reader.headers);
    assert.deepEqual(
      list.json().data.map((c: { provider: string }) => c.provider),
      ['passport'],
    );
    const brightid = await inject('PUT', '/v1/identity/providers/brightid', owner.headers, {
      app: 'keel',
      nodePublicKey: NODE_KEY,
      enabled: false,
    });
    assert.equal(brightid.statusCode, 200, brightid.body);
    const removed = await inject('DELETE', '/v1/identity/providers/brightid', owner.headers);
    assert.equal(removed.statusCode, 204);
    assert.equal((await inject('GET', '/v1/identity/providers/brightid', owner.headers)).statusCode, 404);
  });

  test('should set and read the policy, and start from a default one', async () => {
    const fresh = await inject('GET', '/v1/identity/policy', stranger.headers);
    assert.equal(fresh.statusCode, 200);
    assert.equal(fresh.json().isDefault, true);
    const put = await inject('PUT', '/v1/identity/policy', owner.headers, {
      providers: { passport: { weight: 1, minScore: 15 } },
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual(put.json().providers.passport, {
      weight: 1,
      minScore: 15,
      required: false,
      maxEvidenceAgeSeconds: 2_592_000,
    });
    assert.equal((await inject('GET', '/v1/identity/policy', reader.headers)).json().isDefault, false);
  });

  test('should verify, then read the verification and its history', async () => {
    passport.setScore(ADDRESS, { score: 16 });
    const created = await inject('POST', '/v1/verifications', owner.headers, { subjectId, account: ADDRESS });
    assert.equal(created.statusCode, 201, created.body);
    verificationId = created.json().id;
    assert.equal(created.json().outcome, 'verified', 'score 16 meets the policy’s minScore 15');
    const got = await inject('GET', `/v1/verifications/${verificationId}`, reader.headers);
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().evidence[0].provider, 'passport');
    const list = await inject('GET', '/v1/verifications?outcome=verified', reader.headers);
    assert.deepEqual(
      list.json().data.map((v: { id: string }) => v.id),
      [verificationId],
    );
  });

  test('should reject bad input with every bad field listed', async () => {
    const cases: [Method, string, unknown, string[]][] = [
      ['POST', '/v1/identity/subjects', { externalId: '', extra: 1 }, ['/externalId', '/extra']],
      ['PUT', '/v1/identity/providers/passport', { baseUrl: passport.url }, ['/scorerId']],
      [
        'PUT',
        '/v1/identity/providers/passport',
        { baseUrl: 'http://169.254.169.254', scorerId: '7' },
        ['/baseUrl'],
      ],
      ['PUT', '/v1/identity/providers/world_id', { appId: 'nope', action: 'a', mode: 'onchain' }, ['/appId']],
      [
        'PUT',
        '/v1/identity/providers/world_id',
        { appId: 'app_x', action: 'a', mode: 'onchain' },
        ['/chainId', '/routerAddress'],
      ],
      [
        'PUT',
        '/v1/identity/providers/proof_of_humanity',
        { chains: [{ chainId: 999, address: ADDRESS, version: 'v2' }] },
        ['/chains/0/chainId'],
      ],
      [
        'PUT',
        '/v1/identity/providers/brightid',
        { app: 'keel', nodePublicKey: 'c2hvcnQ=c2hvcnQ=c2hvcnQ=c2hvcnQ=c2hvcnQ=c2g=' },
        ['/nodePublicKey'],
      ],
      [
        'PUT',
        '/v1/identity/policy',
        { providers: { world_id: { minScore: 3 } }, minSources: 2 },
        ['/providers/world_id/minScore', '/minSources'],
      ],
      ['POST', '/v1/verifications', { account: 'eip155:1:0x123', providers: [] }, ['/providers']],
      ['POST', '/v1/verifications', { account: 'eip155:1:0x123' }, ['/account']],
      ['POST', '/v1/verifications', {}, ['']],
      ['GET', '/v1/identity/analytics?from=2026-11-30&to=2026-11-01', undefined, ['/from']],
      ['GET', '/v1/identity/analytics?from=yesterday', undefined, ['/from', '/to']],
      ['GET', '/v1/verifications?limit=1000', undefined, ['/limit']],
    ];
    for (const [method, url, body, paths] of cases) {
      const response = await inject(method, url, owner.headers, body);
      assert.equal(response.statusCode, 400, `${method} ${url}: ${response.body}`);
      assert.equal(response.json().code, 'VALIDATION_FAILED');
      const reported = (response.json().errors ?? []).map((e: { path: string }) => e.path);
      for (const path of paths)
        assert.ok(reported.includes(path), `${method} ${url}: ${path} in ${reported}`);
    }
    const range = await inject('GET', '/v1/identity/analytics?from=2024-01-01&to=2026-01-01', owner.headers);
    assert.equal(range.json().code, 'ANALYTICS_RANGE_TOO_LARGE');
  });

  test('should refuse a verification no enabled provider can check', async () => {
    const response = await inject('POST', '/v1/verifications', stranger.headers, { account: ADDRESS });
    assert.equal(response.statusCode, 422);
    assert.equal(response.json().code, 'NO_IDENTITY_PROVIDERS');
  });

  const routes = (): [Method, string, 'read' | 'write', unknown?][] => [
    ['POST', '/v1/identity/subjects', 'write', {}],
    ['GET', '/v1/identity/subjects', 'read'],
    ['GET', `/v1/identity/subjects/${subjectId}`, 'read'],
    ['PUT', '/v1/identity/providers/world_id', 'write', { appId: 'app_x', action: 'a' }],
    ['PUT', '/v1/identity/providers/passport', 'write', { scorerId: '7', apiKey: 'k' }],
    ['PUT', '/v1/identity/providers/proof_of_humanity', 'write', { chains: [] }],
    ['PUT', '/v1/identity/providers/brightid', 'write', { app: 'keel', nodePublicKey: NODE_KEY }],
    ['GET', '/v1/identity/providers', 'read'],
    ['GET', '/v1/identity/providers/passport', 'read'],
    ['DELETE', '/v1/identity/providers/passport', 'write'],
    ['GET', '/v1/identity/policy', 'read'],
    ['PUT', '/v1/identity/policy', 'write', { providers: { passport: {} } }],
    ['POST', '/v1/verifications', 'write', { account: ADDRESS }],
    ['GET', '/v1/verifications', 'read'],
    ['GET', `/v1/verifications/${verificationId}`, 'read'],
    ['GET', '/v1/identity/analytics?from=2026-11-01&to=2026-11-02', 'read'],
  ];

  test('should answer 401 without credentials on every route', async () => {
    for (const [method, url, , body] of routes()) {
      const response = await inject(method, url, {}, body);
      assert.equal(response.statusCode, 401, `${method} ${url}`);
    }
  });

  test('should answer 403 to a key without the route’s identity permission', async () => {
    for (const [method, url, needs, body] of routes()) {
      const response = await inject(method, url, outsider.headers, body);
      assert.equal(response.statusCode, 403, `${method} ${url}`);
      if (needs === 'write') {
        const readOnly = await inject(method, url, reader.headers, body);
        assert.equal(readOnly.statusCode, 403, `${method} ${url} with identity:read`);
      }
    }
  });

  test('should not show or use another org’s subjects, verifications or providers', async () => {
    const checks: [Method, string, unknown?][] = [
      ['GET', `/v1/identity/subjects/${subjectId}`],
      ['GET', `/v1/verifications/${verificationId}`],
      ['GET', `/v1/verifications?subjectId=${subjectId}`],
      ['POST', '/v1/verifications', { subjectId, account: ADDRESS }],
      ['GET', '/v1/identity/providers/passport'],
      ['DELETE', '/v1/identity/providers/passport'],
    ];
    for (const [method, url, body] of checks) {
      const response = await inject(method, url, stranger.headers, body);
      assert.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`);
    }
    const list = await inject('GET', '/v1/verifications', stranger.headers);
    assert.deepEqual(list.json().data, []);
    const subjects = await inject('GET', '/v1/identity/subjects', stranger.headers);
    assert.deepEqual(subjects.json().data, []);
  });

  test('should describe every identity operation in the OpenAPI document', async () => {
    const document = (await inject('GET', '/openapi.json')).json();
    const operations = Object.entries(
      document.paths as Record<string, Record<string, { operationId?: string; summary?: string }>>,
    )
      .filter(([path]) => path.startsWith('/v1/identity') || path.startsWith('/v1/verifications'))
      .flatMap(([, item]) => Object.values(item));
    assert.ok(operations.length >= 16);
    for (const operation of operations)
      assert.ok(operation.operationId && operation.summary, JSON.stringify(operation));
    for (const type of ['verification.completed', 'verification.expired', 'human.duplicate_detected'])
      assert.ok(document.webhooks[type], `webhook ${type}`);
  });
});
