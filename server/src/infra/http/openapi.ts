import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { allErrors, type ErrorCode, errorEntry, problemType } from './errors.ts';

export const OPENAPI_VERSION = '3.1.0';

/** Read when the document is built, after every module has declared its codes. */
export const apiDescription = () => `Keel is the self-hosted production backend for web3 services.

Every error is an RFC 9457 problem document (\`application/problem+json\`) whose \`code\` comes
from one catalogue:

${allErrors()
  .map(
    (entry) =>
      `- \`${entry.code}\` (${entry.status}): ${entry.title}. Type \`${problemType(entry.code as ErrorCode)}\`.`,
  )
  .join('\n')}

Every response carries \`X-Request-Id\`; send your own (8-128 characters of \`A-Za-z0-9._:-\`) to
correlate logs.`;

export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

/**
 * The problem responses a route documents, for its `schema.response`: one entry per status,
 * whose schema is the shared Problem document with `code` narrowed to the codes given, so a
 * generated client types `error.code`. Fastify never serializes these (problems are sent already
 * rendered); they exist for the API reference and the SDK.
 *
 * ```ts
 * response: { 200: AssetSchema, ...errorResponses('ASSET_NOT_FOUND', 'NOT_FOUND') }
 * ```
 */
export function errorResponses(...codes: ErrorCode[]): Record<number, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const { status } = errorEntry(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<number, unknown> = {};
  for (const [status, group] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[status] = {
      description: group.map((code) => `\`${code}\`: ${errorEntry(code).title}.`).join(' '),
      content: {
        [PROBLEM_MEDIA_TYPE]: {
          schema: {
            allOf: [{ $ref: 'Problem#' }, { type: 'object', properties: { code: { enum: group } } }],
          },
        },
      },
    };
  }
  return responses;
}

/**
 * OpenAPI 3.1 generated from the route schemas, served at /openapi.json, and an interactive
 * reference at /docs. Registered before any route so that every route is collected.
 */
export const openapiPlugin = fp<{ version: string; webhooks?: () => Record<string, unknown> }>(
  async (app, options) => {
    await app.register(swagger, {
      openapi: {
        openapi: OPENAPI_VERSION,
        info: { title: 'Keel API', version: options.version, description: apiDescription() },
        servers: [{ url: '/' }],
        tags: [
          { name: 'operations', description: 'Health, readiness and metrics.' },
          {
            name: 'events',
            description: 'The ordered stream of what happened in an org; also delivered as webhooks.',
          },
        ],
        components: {
          securitySchemes: {
            bearer: {
              type: 'http',
              scheme: 'bearer',
              description: 'An API key (`keel_live_…`, `keel_test_…`) or a session token.',
            },
          },
        },
      },
      // Webhooks are read when the document is generated, so events declared later are included.
      transformObject: (documentObject) => {
        const document =
          'openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject;
        return { ...document, webhooks: options.webhooks?.() ?? {} } as never;
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 0 },
      staticCSP: true,
    });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
);
