import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createErrorReporter, type ErrorReporter } from './error-reporter.ts';

// Secrets the client sends with the failing request. They are declared far from the code that
// raises the error because Sentry sends the source lines around each stack frame.
const HEADER_SECRET = 'Bearer key_header_secret_123';
const QUERY_SECRET = 'query_secret_456';
const BODY_SECRET = 'body_secret_789';
const SECRETS = [HEADER_SECRET, QUERY_SECRET, BODY_SECRET];

const PROJECT_ID = '42';
const PUBLIC_KEY = 'publickey';
const FLUSH_TIMEOUT_MS = 5_000;

interface EnvelopeItem {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

interface Envelope {
  path: string;
  rawBody: string;
  header: Record<string, unknown>;
  items: EnvelopeItem[];
}

interface SentryException {
  type: string;
  value: string;
}

/** A stand-in for Sentry's ingest: it accepts envelopes on /api/<project>/envelope/ and keeps them. */
async function startIngest() {
  const envelopes: Envelope[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://ingest');
      if (request.method !== 'POST' || url.pathname !== `/api/${PROJECT_ID}/envelope/`) {
        response.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      // The SDK compresses large envelopes.
      if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      envelopes.push({ path: request.url ?? '', ...parseEnvelope(body) });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    dsn: `http://${PUBLIC_KEY}@127.0.0.1:${port}/${PROJECT_ID}`,
    envelopes,
    close: () => close(server),
  };
}

/**
 * Sentry's envelope format: a JSON header line, then items, each a JSON header line and a payload.
 * The payload is `length` bytes when the item header says so, otherwise it runs to the next newline.
 */
function parseEnvelope(body: Buffer): Omit<Envelope, 'path'> {
  let offset = 0;
  const readLine = (): Buffer => {
    const end = body.indexOf(0x0a, offset);
    const line = body.subarray(offset, end === -1 ? body.length : end);
    offset = end === -1 ? body.length : end + 1;
    return line;
  };
  const header = JSON.parse(readLine().toString('utf8'));
  const items: EnvelopeItem[] = [];
  while (offset < body.length) {
    const itemHeaderLine = readLine();
    if (itemHeaderLine.length === 0) continue;
    const itemHeader = JSON.parse(itemHeaderLine.toString('utf8'));
    let payload: Buffer;
    if (typeof itemHeader.length === 'number') {
      payload = body.subarray(offset, offset + itemHeader.length);
      offset += itemHeader.length + 1;
    } else {
      payload = readLine();
    }
    items.push({ header: itemHeader, payload: JSON.parse(payload.toString('utf8')) });
  }
  return { rawBody: body.toString('utf8'), header, items };
}

async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

function countProcessFailureListeners(): number {
  return process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection');
}

class PaymentFailedError extends Error {
  override name = 'PaymentFailedError';
}

/** Sends a request carrying secrets in every place a careless reporter could copy them from. */
async function sendRequestWithSecrets(port: number): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/payments/pay_1/capture?token=${QUERY_SECRET}`, {
    method: 'POST',
    headers: {
      authorization: HEADER_SECRET,
      cookie: `session=${HEADER_SECRET}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ password: BODY_SECRET }),
  });
  assert.equal(response.status, 500);
  await response.arrayBuffer();
}

test('without a DSN, the reporter does nothing and sets up no Sentry client', async () => {
  const reporter = await createErrorReporter({ dsn: undefined });

  assert.equal(reporter.capture(new Error('ignored'), { requestId: 'req_1' }), undefined);
  await reporter.flush(FLUSH_TIMEOUT_MS);
  // @sentry/core keeps its state on this global once a client is set up.
  assert.equal((globalThis as { __SENTRY__?: unknown }).__SENTRY__, undefined);
});

describe('with a DSN', () => {
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let event: Record<string, unknown>;
  let eventEnvelope: Envelope;
  let processListenersBefore: number;
  let processListenersAfter: number;

  before(async () => {
    // 1. The ingest stand-in and a reporter pointed at it.
    ingest = await startIngest();
    processListenersBefore = countProcessFailureListeners();
    const reporter: ErrorReporter = await createErrorReporter({
      dsn: ingest.dsn,
      environment: 'test',
      release: 'keel@1.2.3',
    });
    processListenersAfter = countProcessFailureListeners();

    // 2. An application server whose handler fails and reports, the way the HTTP error hook does.
    const app = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const cause = new Error('connection reset by upstream');
        reporter.capture(new PaymentFailedError('upstream refused the capture', { cause }), {
          requestId: 'req_0123',
          route: '/v1/payments/:id/capture',
          orgId: 'org_0456',
          method: 'POST',
        });
        response.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));

    // 3. One failing request, then flush: it resolves once the ingest has answered.
    await sendRequestWithSecrets((app.address() as AddressInfo).port);
    await reporter.flush(FLUSH_TIMEOUT_MS);
    await close(app);

    const eventEnvelopes = ingest.envelopes.filter((envelope) =>
      envelope.items.some((item) => item.header['type'] === 'event'),
    );
    assert.equal(eventEnvelopes.length, 1, 'expected exactly one event');
    eventEnvelope = eventEnvelopes[0]!;
    event = eventEnvelope.items.find((item) => item.header['type'] === 'event')!.payload;
  });

  after(async () => {
    await ingest.close();
  });

  test('posts envelopes to the DSN project endpoint, authenticated by the public key', () => {
    const url = new URL(eventEnvelope.path, 'http://ingest');
    assert.equal(url.pathname, `/api/${PROJECT_ID}/envelope/`);
    assert.equal(url.searchParams.get('sentry_key'), PUBLIC_KEY);
    assert.equal(eventEnvelope.header['event_id'], event['event_id']);
  });

  test('sends the exception type and message, and those of its cause', () => {
    const exceptions = (event['exception'] as { values: SentryException[] }).values;
    const reported = exceptions.map(({ type, value }) => ({ type, value }));
    // Sentry lists the chain from the innermost cause to the outermost error.
    assert.deepEqual(reported, [
      { type: 'Error', value: 'connection reset by upstream' },
      { type: 'PaymentFailedError', value: 'upstream refused the capture' },
    ]);
  });

  test('tags the event with the request context', () => {
    assert.deepEqual(event['tags'], {
      requestId: 'req_0123',
      route: '/v1/payments/:id/capture',
      orgId: 'org_0456',
      method: 'POST',
    });
  });

  test('labels the event with environment and release', () => {
    assert.equal(event['environment'], 'test');
    assert.equal(event['release'], 'keel@1.2.3');
  });

  test('never sends request headers, cookies, query strings or bodies', () => {
    assert.equal(event['request'], undefined);
    assert.equal(event['breadcrumbs'], undefined);
    for (const envelope of ingest.envelopes) {
      assert.doesNotMatch(envelope.rawBody, /authorization/i);
      assert.doesNotMatch(envelope.rawBody, /cookie/i);
      for (const secret of SECRETS) assert.ok(!envelope.rawBody.includes(secret), `${secret} was sent`);
    }
  });

  test('runs no integration that copies requests, console output or local variables', () => {
    const integrations = (event['sdk'] as { integrations: string[] }).integrations;
    for (const collecting of ['Http', 'NodeFetch', 'RequestData', 'Console', 'LocalVariables']) {
      assert.ok(!integrations.includes(collecting), `${collecting} is installed`);
    }
  });

  test('installs no process handler, so Sentry never exits the process on its own', () => {
    assert.equal(processListenersAfter, processListenersBefore);
  });
});
