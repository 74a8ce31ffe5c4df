import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Type } from 'typebox';
import { configWith } from '../../config.ts';
import type { ErrorReporter } from '../observability/error-reporter.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { KeelError } from './errors.ts';
import { type App, createPipeline, REQUEST_ID_HEADER } from './pipeline.ts';

const captured: unknown[] = [];
const reporter: ErrorReporter = {
  capture: (error) => {
    captured.push(error);
  },
  flush: async () => {},
};

async function pipelineWithRoutes(overrides: Parameters<typeof configWith>[0] = {}): Promise<App> {
  const config = configWith({ log: { level: 'silent', pretty: false }, ...overrides });
  const app = createPipeline(config, {
    log: createLogger(config.log),
    metrics: createMetrics(),
    errorReporter: reporter,
  });
  app.post(
    '/things',
    {
      schema: {
        body: Type.Object(
          {
            name: Type.String({ minLength: 1 }),
            amount: Type.String({ pattern: '^[0-9]+$' }),
            tags: Type.Optional(Type.Array(Type.String())),
          },
          { additionalProperties: false },
        ),
        querystring: Type.Object({ dryRun: Type.Optional(Type.Boolean()) }),
      },
    },
    async (request) => ({ received: request.body }),
  );
  app.get('/boom', async () => {
    throw new Error('connection to 10.0.0.7:5432 refused (password=hunter2)');
  });
  app.get('/conflict', async () => {
    throw new KeelError('CONFLICT', 'The thing changed', { members: { currentVersion: 3 } });
  });
  await app.ready();
  return app;
}

describe('request logging', () => {
  test('writes one line per request with route, status, duration and request id, and no credentials', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = {
      write: (line: string) => {
        lines.push(JSON.parse(line));
      },
    };
    const config = configWith({ log: { level: 'info', pretty: false } });
    const app = createPipeline(config, {
      log: createLogger({ level: 'info', pretty: false, destination }),
      metrics: createMetrics(),
      errorReporter: reporter,
    });
    app.get('/things/:id', async (request) => {
      request.orgId = 'org_test';
      return { ok: true };
    });
    await app.ready();
    await app.inject({
      method: 'GET',
      url: '/things/42?x=1',
      headers: {
        authorization: 'Bearer keel_live_secret',
        cookie: 'keel_session=secret',
        'x-request-id': 'trace-0001',
      },
    });
    await app.close();
    const requestLines = lines.filter((line) => line.msg === 'request');
    assert.equal(requestLines.length, 1);
    const [line] = requestLines;
    assert.equal(line!.requestId, 'trace-0001');
    assert.equal(line!.route, '/things/:id');
    assert.equal(line!.url, '/things/42?x=1');
    assert.equal(line!.status, 200);
    assert.equal(line!.method, 'GET');
    assert.equal(line!.orgId, 'org_test');
    assert.equal(typeof line!.durationMs, 'number');
    assert.equal(line!.level, 'info');
    assert.doesNotMatch(JSON.stringify(lines), /keel_live_secret|keel_session=secret/);
  });

  test('redacts secrets that code logs by accident', () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      pretty: false,
      destination: { write: (line: string) => void lines.push(line) },
    });
    log.info(
      { password: 'hunter2', user: { apiKey: 'keel_live_x' }, headers: { authorization: 'Bearer y' } },
      'oops',
    );
    assert.doesNotMatch(lines.join(''), /hunter2|keel_live_x|Bearer y/);
    assert.match(lines.join(''), /\[redacted\]/);
  });
});

describe('HTTP pipeline', () => {
  let app: App;
  before(async () => {
    app = await pipelineWithRoutes({ http: { corsOrigins: ['https://app.example.com'] } });
  });
  after(() => app.close());

  test('generates a request id and echoes it on every response', async () => {
    const response = await app.inject({ method: 'GET', url: '/nowhere' });
    assert.match(String(response.headers[REQUEST_ID_HEADER]), /^req_[0-9a-z]{26}$/);
    assert.equal(response.json().requestId, response.headers[REQUEST_ID_HEADER]);
  });

  test('keeps a valid incoming X-Request-Id and replaces an unsafe one', async () => {
    const kept = await app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'trace-abc.123:x' },
    });
    assert.equal(kept.headers[REQUEST_ID_HEADER], 'trace-abc.123:x');
    const replaced = await app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'bad id with spaces <script>' },
    });
    assert.match(String(replaced.headers[REQUEST_ID_HEADER]), /^req_/);
  });

  test('unknown routes answer 404 problem+json', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/nothing-here' });
    assert.equal(response.statusCode, 404);
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    const body = response.json();
    assert.equal(body.code, 'ROUTE_NOT_FOUND');
    assert.equal(body.type, 'urn:keel:problem:route-not-found');
    assert.equal(body.status, 404);
    assert.equal(typeof body.title, 'string');
    assert.equal(typeof body.detail, 'string');
  });

  test('a known path with the wrong method answers 405 with Allow', async () => {
    const response = await app.inject({ method: 'DELETE', url: '/things' });
    assert.equal(response.statusCode, 405);
    assert.equal(response.headers.allow, 'POST');
    assert.equal(response.json().code, 'METHOD_NOT_ALLOWED');
  });

  test('a validation error lists every bad field with a JSON pointer', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { amount: '12.5', tags: [1], colour: 'red' },
    });
    assert.equal(response.statusCode, 400);
    const body = response.json();
    assert.equal(body.code, 'VALIDATION_FAILED');
    const paths = body.errors.map((error: { path: string }) => error.path).sort();
    assert.deepEqual(paths, ['/amount', '/colour', '/name']);
    for (const error of body.errors) assert.equal(error.in, 'body');
  });

  test('an invalid query parameter is reported as being in the query', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/things?dryRun=perhaps',
      payload: { name: 'a', amount: '1' },
    });
    assert.equal(response.statusCode, 400);
    assert.deepEqual(
      response.json().errors.map((error: { in: string; path: string }) => [error.in, error.path]),
      [['query', '/dryRun']],
    );
  });

  test('malformed JSON answers 400 MALFORMED_BODY', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": ',
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().code, 'MALFORMED_BODY');
  });

  test('a body over the limit answers 413', async () => {
    const config = configWith({});
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'x'.repeat(config.http.bodyLimitBytes + 1), amount: '1' },
    });
    assert.equal(response.statusCode, 413);
    assert.equal(response.json().code, 'PAYLOAD_TOO_LARGE');
  });

  test('an unsupported content type answers 415', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/xml' },
      payload: '<thing/>',
    });
    assert.equal(response.statusCode, 415);
    assert.equal(response.json().code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('a 500 leaks no internals and is reported', async () => {
    captured.length = 0;
    const response = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(response.statusCode, 500);
    const body = response.json();
    assert.equal(body.code, 'INTERNAL');
    assert.doesNotMatch(response.body, /10\.0\.0\.7|hunter2|Error:|at /);
    assert.match(body.detail, new RegExp(body.requestId));
    assert.equal(captured.length, 1);
  });

  test('a KeelError answers with its catalogue status and extension members', async () => {
    const response = await app.inject({ method: 'GET', url: '/conflict' });
    assert.equal(response.statusCode, 409);
    assert.equal(response.json().code, 'CONFLICT');
    assert.equal(response.json().currentVersion, 3);
  });

  test('security headers are set on every response', async () => {
    const response = await app.inject({ method: 'GET', url: '/nowhere' });
    assert.match(String(response.headers['strict-transport-security']), /max-age=31536000/);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
  });

  test('CORS allows only configured origins', async () => {
    const allowed = await app.inject({
      method: 'OPTIONS',
      url: '/things',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com');
    const denied = await app.inject({
      method: 'OPTIONS',
      url: '/things',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' },
    });
    assert.equal(denied.headers['access-control-allow-origin'], undefined);
  });
});
