import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { Type } from 'typebox';
import { configWith } from '../../config.ts';
import type { ErrorReporter } from '../observability/error-reporter.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { flushRequestLogs, MAX_LOGGED_URL_LENGTH, requestLogWriter } from '../observability/request-log.ts';
import { KeelError } from './errors.ts';
import {
  API_SECURITY_HEADERS,
  type App,
  createPipeline,
  deferredSchemas,
  PAGE_SECURITY_HEADERS,
  REQUEST_ID_HEADER,
} from './pipeline.ts';

const captured: unknown[] = [];
const reporter: ErrorReporter = {
  capture: (error) => {
    captured.push(error);
  },
  flush: async () => {},
};

/** A pipeline with no routes, logging nothing. */
function silentPipeline(overrides: Parameters<typeof configWith>[0] = {}): App {
  const config = configWith({ log: { level: 'silent', pretty: false }, ...overrides });
  return createPipeline(config, {
    log: createLogger(config.log),
    metrics: createMetrics(),
    errorReporter: reporter,
  });
}

async function pipelineWithRoutes(overrides: Parameters<typeof configWith>[0] = {}): Promise<App> {
  const app = silentPipeline(overrides);
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
  app.get('/docs/page', async (_request, reply) => reply.type('text/html').send('<p>docs</p>'));
  app.get('/conflict', async () => {
    throw new KeelError('CONFLICT', 'The thing changed', { members: { currentVersion: 3 } });
  });
  await app.ready();
  return app;
}

/**
 * Sends one request through a pipeline whose log is captured, and returns every line written
 * (each ending in a newline) once the request's turn is over: request lines of one event loop
 * turn arrive in one write.
 */
async function logOf(
  register: (app: App) => void,
  request: InjectOptions,
  level: 'info' | 'warn' = 'info',
): Promise<string[]> {
  const lines: string[] = [];
  const config = configWith({ log: { level, pretty: false } });
  const app = createPipeline(config, {
    log: createLogger({
      level,
      pretty: false,
      destination: { write: (chunk: string) => void lines.push(...chunk.split(/(?<=\n)/)) },
    }),
    metrics: createMetrics(),
    errorReporter: reporter,
  });
  register(app);
  await app.ready();
  await app.inject(request);
  await new Promise(setImmediate);
  await app.close();
  return lines;
}

const parsed = (lines: readonly string[]) => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

describe('request logging', () => {
  test('writes one line per request with route, status, duration and request id, and no credentials', async () => {
    const lines = parsed(
      await logOf(
        (app) =>
          app.get('/things/:id', async (request) => {
            request.orgId = 'org_test';
            return { ok: true };
          }),
        {
          method: 'GET',
          url: '/things/42?x=1',
          headers: {
            authorization: 'Bearer keel_live_secret',
            cookie: 'keel_session=secret',
            'x-request-id': 'trace-0001',
          },
        },
      ),
    );
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

describe('request log line', () => {
  const loggedLines = (url: string, level: 'info' | 'warn' = 'info') =>
    logOf((app) => app.get('/echo/:value', async () => ({ ok: true })), { method: 'GET', url }, level);

  test("is valid JSON in pino's shape whatever the URL holds, and long URLs are cut", async () => {
    const hostile = '/echo/%22x%22?q="quoted"\\back\u0001&line=%0A';
    const [line] = (await loggedLines(hostile)).filter((text) => text.includes('"msg":"request"'));
    const parsed = JSON.parse(line!) as Record<string, unknown>;
    // The test client percent-encodes quotes and control characters; the backslash stays.
    assert.equal(parsed.url, '/echo/%22x%22?q=%22quoted%22\\back%01&line=%0A');
    assert.equal(parsed.route, '/echo/:value');
    assert.equal(parsed.level, 'info');
    assert.equal(parsed.name, 'keel');
    assert.equal(parsed.pid, process.pid);
    assert.equal(typeof parsed.hostname, 'string');
    assert.ok(!Number.isNaN(Date.parse(String(parsed.time))));
    assert.equal(parsed.orgId, undefined);
    assert.ok(line!.endsWith('}\n'));

    const long = `/echo/x?pad=${'a'.repeat(400)}`;
    const [cut] = (await loggedLines(long)).filter((text) => text.includes('"msg":"request"'));
    assert.equal(JSON.parse(cut!).url, `${long.slice(0, MAX_LOGGED_URL_LENGTH)}…`);
  });

  test('the lines of one event loop turn go out in one write, in order, each a JSON line', async () => {
    const writes: string[] = [];
    const log = createLogger({
      level: 'info',
      pretty: false,
      destination: { write: (chunk: string) => void writes.push(chunk) },
    });
    const write = requestLogWriter(log);
    for (let i = 0; i < 3; i++) {
      write({
        requestId: `req-${i}-abcdef`,
        method: 'GET',
        routeJson: '"/r"',
        url: `/r?i=${i}`,
        status: 200,
        durationMs: 1.23456,
        orgId: i === 1 ? 'org_x' : undefined,
        ip: '::1',
      });
    }
    assert.equal(writes.length, 0, 'nothing before the end of the turn');
    await new Promise(setImmediate);
    assert.equal(writes.length, 1);
    const lines = writes[0]!.split('\n');
    assert.equal(lines.pop(), '');
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).url),
      ['/r?i=0', '/r?i=1', '/r?i=2'],
    );
    assert.equal(JSON.parse(lines[1]!).orgId, 'org_x');
    assert.equal(JSON.parse(lines[0]!).durationMs, 1.235);

    write({
      requestId: 'req-last-abc',
      method: 'GET',
      routeJson: '"/r"',
      url: '/r',
      status: 200,
      durationMs: 1,
      orgId: undefined,
      ip: '::1',
    });
    flushRequestLogs();
    assert.equal(writes.length, 2, 'flushRequestLogs writes waiting lines at once (the exit path)');
    await new Promise(setImmediate);
    assert.equal(writes.length, 2, 'and they are not written twice');
  });

  test('a handler logging through request.log gets a line bound to the request id', async () => {
    const lines = parsed(
      await logOf(
        (app) =>
          app.get('/talk', async (request) => {
            request.log.warn({ detail: 'x' }, 'handler says');
            request.log.child({ step: 2 }).info('child says');
            return { ok: true };
          }),
        { method: 'GET', url: '/talk', headers: { 'x-request-id': 'trace-talk-1' } },
      ),
    );
    const said = lines.find((line) => line.msg === 'handler says');
    assert.equal(said?.requestId, 'trace-talk-1');
    assert.equal(said?.level, 'warn');
    assert.equal(said?.detail, 'x');
    const child = lines.find((line) => line.msg === 'child says');
    assert.equal(child?.requestId, 'trace-talk-1');
    assert.equal(child?.step, 2);
  });

  test('follows the log level: nothing is written below info', async () => {
    assert.deepEqual(await loggedLines('/echo/1', 'warn'), []);
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
    for (const url of ['/nowhere', '/conflict']) {
      const response = await app.inject({ method: 'GET', url });
      for (const [name, value] of Object.entries(API_SECURITY_HEADERS)) {
        assert.equal(response.headers[name], value, `${url}: ${name}`);
      }
      assert.match(String(response.headers['strict-transport-security']), /max-age=31536000/);
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
    }
  });

  test("pages under /docs get helmet's full browser set instead of the API set", async () => {
    const pages = await pipelineWithRoutes();
    try {
      const response = await pages.inject({ method: 'GET', url: '/docs/page' });
      assert.equal(response.statusCode, 200);
      for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) {
        assert.equal(response.headers[name], value, name);
      }
      assert.equal(response.headers['cache-control'], undefined);
      assert.equal(response.headers['referrer-policy'], 'no-referrer');
    } finally {
      await pages.close();
    }
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

  test('a preflight from an allowed origin is answered 204 for every API method, with credentials', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const response = await app.inject({
        method: 'OPTIONS',
        url: '/things',
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': method,
          'access-control-request-headers': 'authorization, content-type, idempotency-key',
        },
      });
      assert.equal(response.statusCode, 204);
      assert.match(String(response.headers['access-control-allow-methods']), new RegExp(`\\b${method}\\b`));
      assert.equal(response.headers['access-control-allow-credentials'], 'true');
      assert.equal(
        response.headers['access-control-allow-headers'],
        'authorization, content-type, idempotency-key',
      );
      assert.equal(response.headers['access-control-max-age'], '600');
    }
  });

  test('CORS headers go only to allowed cross-origin requests; every response varies by Origin', async () => {
    const sameOrigin = await app.inject({ method: 'GET', url: '/conflict' });
    assert.equal(sameOrigin.headers.vary, 'Origin');
    for (const name of Object.keys(sameOrigin.headers)) assert.doesNotMatch(name, /^access-control-/);

    const allowed = await app.inject({
      method: 'GET',
      url: '/conflict',
      headers: { origin: 'https://app.example.com' },
    });
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(allowed.headers['access-control-allow-credentials'], 'true');
    assert.match(String(allowed.headers['access-control-expose-headers']), /x-request-id/);
    assert.match(String(allowed.headers['access-control-expose-headers']), /ratelimit/);

    const foreign = await app.inject({
      method: 'GET',
      url: '/conflict',
      headers: { origin: 'https://evil.example.net' },
    });
    for (const name of Object.keys(foreign.headers)) assert.doesNotMatch(name, /^access-control-/);
  });

  test('without CORS_ORIGINS no response carries CORS headers or varies by Origin', async () => {
    const closed = await pipelineWithRoutes();
    try {
      const response = await closed.inject({
        method: 'GET',
        url: '/conflict',
        headers: { origin: 'https://app.example.com' },
      });
      assert.equal(response.headers.vary, undefined);
      for (const name of Object.keys(response.headers)) assert.doesNotMatch(name, /^access-control-/);
      const preflight = await closed.inject({
        method: 'OPTIONS',
        url: '/things',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.statusCode, 405);
    } finally {
      await closed.close();
    }
  });

  test('CORS_ORIGINS=* admits any origin without credentials', async () => {
    const open = await pipelineWithRoutes({ http: { corsOrigins: ['*'] } });
    try {
      const response = await open.inject({
        method: 'GET',
        url: '/conflict',
        headers: { origin: 'https://anyone.example.org' },
      });
      assert.equal(response.headers['access-control-allow-origin'], '*');
      assert.equal(response.headers['access-control-allow-credentials'], undefined);
    } finally {
      await open.close();
    }
  });

  test('an OPTIONS request that is not a preflight is routed: 405 with Allow on a known path', async () => {
    const response = await app.inject({ method: 'OPTIONS', url: '/things' });
    assert.equal(response.statusCode, 405);
    assert.match(String(response.headers.allow), /POST/);
  });
});

describe('response serializers', () => {
  test('a route serializes by its response schema, with the serializer built on the first response', async () => {
    const app = silentPipeline();
    app.get(
      '/shaped',
      {
        schema: {
          response: {
            200: Type.Object({ id: Type.String(), count: Type.Integer() }),
            409: Type.Object({ never: Type.String() }),
          },
        },
      },
      async () => ({ id: 'a', count: 2, secret: 'not in the schema' }),
    );
    await app.ready();
    try {
      // Two statuses, for GET and for the HEAD route Fastify adds beside it.
      const declared = app.deferredSchemas.pending();
      assert.equal(declared, 4, 'nothing built before the first response');
      for (let i = 0; i < 2; i += 1) {
        const response = await app.inject({ method: 'GET', url: '/shaped' });
        assert.equal(response.statusCode, 200);
        assert.deepEqual(response.json(), { id: 'a', count: 2 }, 'fields outside the schema are not sent');
      }
      assert.equal(app.deferredSchemas.pending(), declared - 1, "GET's 200 serializer was built, once");
      await app.deferredSchemas.buildAll();
      assert.equal(app.deferredSchemas.pending(), 0);
    } finally {
      await app.close();
    }
  });

  test('buildAll builds every validator and serializer not built yet, and reports a schema that does not compile', async () => {
    const deferred = deferredSchemas();
    const serializerOf = deferred.serializers(undefined, undefined);
    const validatorOf = deferred.validators({}, { customOptions: { allErrors: true } });
    // Neither compiler looks at a schema before it is asked to build it.
    const broken = serializerOf({
      method: 'GET',
      url: '/x',
      httpStatus: '500',
      schema: { $ref: 'nowhere#' },
    });
    const serialize = serializerOf({
      method: 'GET',
      url: '/x',
      httpStatus: '200',
      schema: { type: 'object', properties: { n: { type: 'integer' } } },
    });
    const validate = (
      validatorOf as unknown as (route: object) => ((data: unknown) => boolean) & { errors?: unknown }
    )({
      method: 'POST',
      url: '/x',
      httpPart: 'body',
      schema: {
        type: 'object',
        required: ['a', 'b'],
        properties: { a: { type: 'string' }, b: { type: 'string' } },
      },
    });
    assert.equal(deferred.pending(), 3);
    assert.equal(validate({ a: 'x', b: 'y' }), true);
    assert.equal(validate({}), false);
    assert.equal(
      (validate.errors as unknown[]).length,
      2,
      "Ajv's errors, every one, on the function Fastify called",
    );
    assert.equal(deferred.pending(), 2, 'the validator was built by its first call');
    await assert.rejects(deferred.buildAll(), /1 route schema\(s\) do not compile: .*nowhere/);
    assert.equal(
      deferred.pending(),
      1,
      'the serializer that compiled is built; the broken one is still pending',
    );
    assert.equal(serialize({ n: 1, other: true }), '{"n":1}');
    assert.throws(() => broken({}), /nowhere/);
  });
});
