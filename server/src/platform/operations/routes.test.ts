import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import {
  buildTestApp,
  createTestDatabase,
  SKIP_WITHOUT_REDIS,
  type TestApp,
  type TestDatabase,
  testRedisUrl,
} from '../../../test/harness.ts';

describe('operations routes', () => {
  let database: TestDatabase;
  let keel: TestApp;
  before(async () => {
    database = await createTestDatabase();
    keel = await buildTestApp(database);
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  test('/health/live answers 200 ok', async () => {
    const response = await keel.app.inject({ method: 'GET', url: '/health/live' });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), { status: 'ok' });
  });

  test('/health/ready reports postgres and migrations with their latency', async () => {
    const response = await keel.app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(response.statusCode, 200);
    const body = response.json();
    assert.equal(body.status, 'ready');
    for (const name of ['postgres', 'migrations']) {
      assert.equal(body.checks[name].status, 'up');
      assert.equal(typeof body.checks[name].latencyMs, 'number');
    }
    assert.equal(body.checks.redis, undefined, 'no redis check without REDIS_URL');
  });

  test('/metrics exposes request durations by route and pool gauges', async () => {
    await keel.app.inject({ method: 'GET', url: '/health/live' });
    await keel.app.inject({ method: 'GET', url: '/no/such/route' });
    const response = await keel.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    assert.match(
      response.body,
      /http_request_duration_seconds_count\{route="\/health\/live",method="GET",status="200"\} \d+/,
    );
    assert.match(
      response.body,
      /http_request_duration_seconds_count\{route="unmatched",method="GET",status="404"\}/,
    );
    assert.match(response.body, /keel_db_pool_connections\{pool="main",state="total"\} \d+/);
    assert.match(response.body, /keel_db_pool_connections\{pool="main",state="waiting"\} 0/);
    assert.match(response.body, /process_cpu_seconds_total/);
  });

  test("every route's response schemas compile", async () => {
    assert.ok(keel.app.deferredSchemas.pending() > 0, 'serializers wait for their first use');
    await keel.app.deferredSchemas.buildAll();
    assert.equal(keel.app.deferredSchemas.pending(), 0);
  });

  test('/openapi.json is a valid OpenAPI 3.1 document', async () => {
    const response = await keel.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(response.statusCode, 200);
    const document = response.json();
    assert.equal(document.openapi, '3.1.0');
    const result = await new Validator().validate(document);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    for (const [path, operations] of Object.entries<
      Record<string, { operationId?: string; summary?: string }>
    >(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.ok(operation.operationId, `${method.toUpperCase()} ${path} has an operationId`);
        assert.ok(operation.summary, `${method.toUpperCase()} ${path} has a summary`);
      }
    }
    assert.ok(document.paths['/health/ready']);
    assert.equal(document.paths['/openapi.json'], undefined, 'the document does not describe itself');
  });

  test('/docs serves the interactive reference with its assets', async () => {
    const page = await keel.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(page.body, /swagger-ui/);
    const bundle = await keel.app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
    assert.equal(bundle.statusCode, 200);
    const initializer = await keel.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    assert.equal(initializer.statusCode, 200);
  });
});

describe('readiness when a dependency is down', () => {
  test('answers 503 with postgres down when the database is gone', async () => {
    const database = await createTestDatabase();
    const keel = await buildTestApp(database);
    try {
      await database.drop();
      const response = await keel.app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(response.statusCode, 503);
      const body = response.json();
      assert.equal(body.status, 'not_ready');
      assert.equal(body.checks.postgres.status, 'down');
      assert.ok(body.checks.postgres.detail);
    } finally {
      await keel.close();
    }
  });

  test('answers 503 with migrations down when migrations are pending', async () => {
    const database = await createTestDatabase({ empty: true });
    const keel = await buildTestApp(database);
    try {
      const response = await keel.app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(response.statusCode, 503);
      const body = response.json();
      assert.equal(body.checks.postgres.status, 'up');
      assert.equal(body.checks.migrations.status, 'down');
      assert.match(body.checks.migrations.detail, /migrations pending/);
    } finally {
      await keel.close();
      await database.drop();
    }
  });

  test('includes redis when configured and answers 503 when it is unreachable', async () => {
    const database = await createTestDatabase();
    // Nothing listens on port 1: every command fails fast.
    const keel = await buildTestApp(database, { config: { redis: { url: 'redis://127.0.0.1:1' } } });
    try {
      const response = await keel.app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(response.statusCode, 503);
      assert.equal(response.json().checks.redis.status, 'down');
      assert.equal(response.json().checks.postgres.status, 'up');
    } finally {
      await keel.close();
      await database.drop();
    }
  });

  test('reports redis up when it is reachable', { skip: SKIP_WITHOUT_REDIS }, async () => {
    const database = await createTestDatabase();
    const keel = await buildTestApp(database, { config: { redis: { url: testRedisUrl } } });
    try {
      const response = await keel.app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(response.statusCode, 200);
      assert.equal(response.json().checks.redis.status, 'up');
    } finally {
      await keel.close();
      await database.drop();
    }
  });
});
