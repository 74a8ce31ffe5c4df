import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configWith } from '../../config.ts';
import { createErrorReporter } from '../observability/error-reporter.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { defineErrors, type ErrorCode, KeelError } from './errors.ts';
import { errorResponses, openapiPlugin, PROBLEM_MEDIA_TYPE } from './openapi.ts';
import { createPipeline } from './pipeline.ts';

// Declared at run time only: a test must not add codes to every module's `ErrorCode` type.
defineErrors('openapi-probe', {
  PROBE_GONE: { status: 404, title: 'The probe is gone' },
  PROBE_LOCKED: { status: 409, title: 'The probe is locked' },
});
const PROBE_GONE = 'PROBE_GONE' as ErrorCode;
const PROBE_LOCKED = 'PROBE_LOCKED' as ErrorCode;

async function probeApp() {
  const config = configWith({ log: { level: 'silent', pretty: false } });
  const log = createLogger(config.log);
  const app = createPipeline(config, {
    log,
    metrics: createMetrics(),
    errorReporter: await createErrorReporter({ dsn: undefined }),
  });
  await app.register(openapiPlugin, { version: '0.0.0' });
  app.get(
    '/probe',
    {
      schema: {
        operationId: 'probe',
        response: { 200: { type: 'object' }, ...errorResponses(PROBE_GONE, 'NOT_FOUND', PROBE_LOCKED) },
      },
    },
    async () => {
      throw new KeelError(PROBE_GONE);
    },
  );
  await app.ready();
  return app;
}

describe('errorResponses', () => {
  test('documents one problem response per status, its code narrowed to the codes given', async () => {
    const app = await probeApp();
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const responses = document.paths['/probe'].get.responses;
    const notFound = responses['404'].content[PROBLEM_MEDIA_TYPE].schema;
    assert.deepEqual(notFound.allOf[1].properties.code.enum, ['PROBE_GONE', 'NOT_FOUND']);
    assert.match(responses['404'].description, /PROBE_GONE/);
    assert.deepEqual(responses['409'].content[PROBLEM_MEDIA_TYPE].schema.allOf[1].properties.code.enum, [
      'PROBE_LOCKED',
    ]);
    assert.match(document.info.description, /PROBE_LOCKED/, 'the catalogue lists codes declared by modules');
    await app.close();
  });

  test('a documented problem status is still sent as the rendered problem document', async () => {
    const app = await probeApp();
    await app.deferredSchemas.buildAll();
    const response = await app.inject({ method: 'GET', url: '/probe' });
    assert.equal(response.statusCode, 404);
    assert.match(String(response.headers['content-type']), /application\/problem\+json/);
    assert.equal(response.json().code, 'PROBE_GONE');
    await app.close();
  });

  test('a code no module declared is a programmer error', () => {
    assert.throws(() => errorResponses('NO_SUCH_CODE' as never), /not declared/);
  });
});
