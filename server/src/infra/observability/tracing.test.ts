import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isUntracedPath, startTracing, type Tracing, tracesUrl } from './tracing.ts';

const require = createRequire(import.meta.url);
// Read directly rather than through server/test/harness.ts: the harness imports pg and fastify,
// and this file must load them only after tracing started. scripts/test.ts sets KEEL_TEST_ADMIN_URL;
// only `select 1` queries run against it.
const databaseUrl = process.env['KEEL_TEST_DATABASE_URL'] || process.env['KEEL_TEST_ADMIN_URL'] || undefined;
const redisUrl = process.env['KEEL_TEST_REDIS_URL'] || undefined;
const SKIP_WITHOUT_DATABASE = 'neither KEEL_TEST_DATABASE_URL nor KEEL_TEST_ADMIN_URL is set';

/** OTLP span kinds, as numbers in the JSON encoding. */
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

const QUERY_IN_REQUEST = 'select 1 as traced_in_request';
const QUERY_OUTSIDE_REQUEST = 'select 1 as untraced_outside_request';
const REDIS_KEY_IN_REQUEST = 'keel:test:tracing';
const UNTRACED_PATHS = ['/health/live', '/health/ready', '/metrics'];

interface ExportedSpan {
  resource: Record<string, unknown>;
  scope: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
}

interface CollectorRequest {
  method: string | undefined;
  path: string | undefined;
  contentType: string | undefined;
}

/** A stand-in OTLP/HTTP collector: it accepts trace exports and keeps the spans they carry. */
async function startCollector() {
  const requests: CollectorRequest[] = [];
  const spans: ExportedSpan[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const contentType = request.headers['content-type'];
      requests.push({ method: request.method, path: request.url, contentType });
      if (request.method !== 'POST' || request.url !== '/v1/traces' || contentType !== 'application/json') {
        response.writeHead(415).end();
        return;
      }
      let body = Buffer.concat(chunks);
      if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      spans.push(...decodeTraceExport(JSON.parse(body.toString('utf8'))));
      // An empty ExportTraceServiceResponse: every span accepted.
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const port = await listen(server);
  return { endpoint: `http://127.0.0.1:${port}`, requests, spans, close: () => close(server) };
}

interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}
interface OtlpAnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpTraceExport {
  resourceSpans: {
    resource: { attributes: OtlpKeyValue[] };
    scopeSpans: {
      scope: { name: string };
      spans: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes: OtlpKeyValue[];
      }[];
    }[];
  }[];
}

function decodeTraceExport(body: OtlpTraceExport): ExportedSpan[] {
  return body.resourceSpans.flatMap((resourceSpans) =>
    resourceSpans.scopeSpans.flatMap((scopeSpans) =>
      scopeSpans.spans.map((span) => ({
        resource: decodeAttributes(resourceSpans.resource.attributes),
        scope: scopeSpans.scope.name,
        name: span.name,
        kind: span.kind,
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId || undefined,
        attributes: decodeAttributes(span.attributes),
      })),
    ),
  );
}

function decodeAttributes(attributes: OtlpKeyValue[]): Record<string, unknown> {
  return Object.fromEntries(
    attributes.map(({ key, value }) => [
      key,
      value.stringValue ?? value.intValue ?? value.doubleValue ?? value.boolValue,
    ]),
  );
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

function loadedPackageFiles(packageName: string): string[] {
  return Object.keys(require.cache).filter((file) => file.includes(`/node_modules/${packageName}/`));
}

test('without an endpoint, starts nothing and loads no OpenTelemetry SDK', async () => {
  const tracing = await startTracing({ endpoint: undefined, serviceName: 'keel', serviceVersion: '0.0.0' });

  assert.equal(tracing, undefined);
  assert.deepEqual(loadedPackageFiles('@opentelemetry/sdk-node'), []);
});

test('appends the OTLP traces path to the base endpoint', () => {
  assert.equal(tracesUrl('http://collector:4318'), 'http://collector:4318/v1/traces');
  assert.equal(tracesUrl('http://collector:4318/'), 'http://collector:4318/v1/traces');
  assert.equal(tracesUrl('https://otel.example.com/prefix'), 'https://otel.example.com/prefix/v1/traces');
});

test('recognises probe and scrape paths, with or without a query string', () => {
  for (const path of ['/health/live', '/health/ready?verbose=1', '/metrics', '/metrics?name[]=x']) {
    assert.equal(isUntracedPath(path), true, path);
  }
  for (const path of ['/v1/health', '/metricsx', '/v1/things', '/', undefined]) {
    assert.equal(isUntracedPath(path), false, String(path));
  }
});

describe('with an OTLP endpoint', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;

  before(async () => {
    // 1. The collector stand-in, then tracing pointed at it, with a trailing slash as operators
    // often write base URLs.
    collector = await startCollector();
    // In production the endpoint comes from this very variable, which the OpenTelemetry SDK reads
    // too: with it set, anything the SDK exports besides traces would reach the collector.
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = collector.endpoint;
    const tracing: Tracing | undefined = await startTracing({
      endpoint: `${collector.endpoint}/`,
      serviceName: 'keel-test',
      serviceVersion: '1.2.3',
    });
    assert.ok(tracing);

    // 2. Load the instrumented modules after tracing started, as main.ts does. http comes through
    // require(), as fastify (CommonJS) loads it; pg and ioredis are CommonJS packages imported from ESM.
    const instrumentedHttp = require('node:http') as typeof http;
    const pg = databaseUrl ? (await import('pg')).default : undefined;
    const pool = pg && databaseUrl ? new pg.Pool({ connectionString: databaseUrl, max: 1 }) : undefined;
    const Redis = redisUrl ? (await import('ioredis')).Redis : undefined;
    const redis = Redis && redisUrl ? new Redis(redisUrl, { lazyConnect: true }) : undefined;
    await redis?.connect();

    // 3. A small application server: one API route that touches the database and Redis, plus the
    // probe and scrape routes that must stay out of traces.
    const app = instrumentedHttp.createServer(async (request, response) => {
      if (request.url === '/v1/things') {
        await pool?.query(QUERY_IN_REQUEST);
        await redis?.set(REDIS_KEY_IN_REQUEST, '1', 'PX', 1_000);
      }
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    const appPort = await listen(app);
    const get = (path: string) =>
      new Promise<void>((resolve, reject) => {
        instrumentedHttp
          .get({ host: '127.0.0.1', port: appPort, path, agent: false }, (response) => {
            response.resume();
            response.on('end', resolve);
          })
          .on('error', reject);
      });

    // 4. Traffic: an API call, the untraced paths, and a query outside any request.
    await get('/v1/things');
    for (const path of UNTRACED_PATHS) await get(path);
    await pool?.query(QUERY_OUTSIDE_REQUEST);

    // 5. Shut down: shutdown() must flush every queued span to the collector before it resolves.
    await pool?.end();
    await redis?.quit();
    await close(app);
    await tracing.shutdown();
  });

  after(async () => {
    delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    await collector.close();
  });

  test('exports only traces, as OTLP/HTTP JSON to the /v1/traces path of the endpoint', () => {
    assert.ok(collector.requests.length > 0, 'the collector received no export');
    for (const request of collector.requests) {
      assert.deepEqual(request, { method: 'POST', path: '/v1/traces', contentType: 'application/json' });
    }
  });

  test('labels every span with the service name and version', () => {
    assert.ok(collector.spans.length > 0);
    for (const span of collector.spans) {
      assert.equal(span.resource['service.name'], 'keel-test');
      assert.equal(span.resource['service.version'], '1.2.3');
    }
  });

  test('traces an incoming request as a server span joined to the caller trace', () => {
    const server = findServerSpan('/v1/things');
    const client = collector.spans.find(
      (span) => span.kind === SPAN_KIND_CLIENT && String(span.attributes['url.full']).endsWith('/v1/things'),
    );
    assert.ok(client, 'no client span for the outgoing request');
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['http.response.status_code'], 200);
    // The outgoing request carried traceparent, so the server span continues the caller's trace.
    assert.equal(server.traceId, client.traceId);
    assert.equal(server.parentSpanId, client.spanId);
  });

  test('traces a pg query made during a request inside that request trace', (t) => {
    if (!databaseUrl) {
      t.skip(SKIP_WITHOUT_DATABASE);
      return;
    }
    const server = findServerSpan('/v1/things');
    const query = collector.spans.find((span) => span.attributes['db.query.text'] === QUERY_IN_REQUEST);
    assert.ok(query, 'no span for the query');
    assert.equal(query.scope, '@opentelemetry/instrumentation-pg');
    assert.equal(query.kind, SPAN_KIND_CLIENT);
    assert.equal(query.attributes['db.system.name'], 'postgresql');
    assert.equal(query.traceId, server.traceId);
  });

  test('does not trace a pg query made outside any request', (t) => {
    if (!databaseUrl) {
      t.skip(SKIP_WITHOUT_DATABASE);
      return;
    }
    const query = collector.spans.find((span) => span.attributes['db.query.text'] === QUERY_OUTSIDE_REQUEST);
    assert.equal(query, undefined);
  });

  test('traces a Redis command made during a request inside that request trace', (t) => {
    if (!redisUrl) {
      t.skip('KEEL_TEST_REDIS_URL is not set');
      return;
    }
    const server = findServerSpan('/v1/things');
    const command = collector.spans.find((span) => span.scope === '@opentelemetry/instrumentation-ioredis');
    assert.ok(command, 'no span for the Redis command');
    assert.equal(command.name, 'set');
    assert.equal(command.traceId, server.traceId);
  });

  test('does not trace health probes or metrics scrapes', () => {
    const tracedPaths = collector.spans
      .filter((span) => span.kind === SPAN_KIND_SERVER)
      .map((span) => span.attributes['url.path']);
    for (const path of UNTRACED_PATHS) assert.ok(!tracedPaths.includes(path), `${path} was traced`);
  });

  function findServerSpan(path: string): ExportedSpan {
    const span = collector.spans.find(
      (candidate) => candidate.kind === SPAN_KIND_SERVER && candidate.attributes['url.path'] === path,
    );
    assert.ok(span, `no server span for ${path}`);
    return span;
  }
});
