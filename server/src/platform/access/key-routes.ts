import { Type } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import type { ApiKeyService } from './api-keys.ts';
import { apiKeyScopes } from './domain/permissions.ts';
import { actorOf, cursorAfter, presentApiKey, unwrap } from './present.ts';
import {
  ApiKeySchema,
  ApiKeySecretSchema,
  apiKeyBodies,
  IdParams,
  ListApiKeysQuery,
  pageOf,
  RollApiKeyBody,
  RolledApiKeySchema,
} from './schemas.ts';

const NoContent = Type.Null({ description: 'No content.' });
const KeyParams = IdParams('keyId', 'key_01jd7x8m3q9f2k5v6w7y8z9a0b');
const date = (value: string | null | undefined) =>
  value === undefined ? undefined : value === null ? null : new Date(value);

/**
 * API keys of the org. Creating and rolling are not idempotent on purpose: their response holds
 * a secret, and Keel stores no response that does.
 */
export function keyRoutes(deps: { apiKeys: ApiKeyService }) {
  const { apiKeys } = deps;

  return async (app: App) => {
    const bodies = apiKeyBodies(apiKeyScopes());
    app.post(
      '/v1/api-keys',
      {
        config: { permission: 'api_keys:write', auditAction: 'api_key.created' },
        schema: {
          operationId: 'createApiKey',
          summary: 'Create an API key',
          description:
            'The secret (`keel_live_…` or `keel_test_…`) is in this response and never again: Keel keeps only its ' +
            'SHA-256. Scopes must be permissions you hold.',
          tags: ['api-keys'],
          body: bodies.create,
          response: { 201: ApiKeySecretSchema },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const created = unwrap(
          await apiKeys.create(actorOf(request), requireOrgId(request), {
            name: body.name,
            environment: body.environment ?? 'live',
            scopes: body.scopes,
            expiresAt: date(body.expiresAt),
            rateLimitPerMinute: body.rateLimitPerMinute,
            ipAllowlist: body.ipAllowlist,
            metadata: body.metadata,
          }),
        );
        return reply
          .code(201)
          .header('location', `/v1/api-keys/${created.apiKey.id}`)
          .send({ apiKey: presentApiKey(created.apiKey), secret: created.secret });
      },
    );

    app.get(
      '/v1/api-keys',
      {
        config: { permission: 'api_keys:read' },
        schema: {
          operationId: 'listApiKeys',
          summary: 'List the org’s API keys, newest first',
          tags: ['api-keys'],
          querystring: ListApiKeysQuery,
          response: { 200: pageOf(ApiKeySchema, 'ApiKeyPage') },
        },
      },
      async (request) => {
        const page = await apiKeys.list(requireOrgId(request), {
          limit: request.query.limit,
          after: cursorAfter(request.query.cursor, 'key'),
          includeRevoked: request.query.includeRevoked,
        });
        return { data: page.items.map(presentApiKey), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/api-keys/:keyId',
      {
        config: { permission: 'api_keys:read' },
        schema: {
          operationId: 'getApiKey',
          summary: 'Get an API key (never its secret)',
          tags: ['api-keys'],
          params: KeyParams,
          response: { 200: ApiKeySchema },
        },
      },
      async (request) => {
        const key = await apiKeys.get(requireOrgId(request), request.params.keyId);
        if (!key) throw new KeelError('NOT_FOUND', `No API key ${request.params.keyId}`);
        return presentApiKey(key);
      },
    );

    app.patch(
      '/v1/api-keys/:keyId',
      {
        config: { permission: 'api_keys:write', auditAction: 'api_key.updated' },
        schema: {
          operationId: 'updateApiKey',
          summary: 'Change an API key’s name, scopes, expiry, rate limit, IP allowlist or metadata',
          description: 'Takes effect on every replica within a second.',
          tags: ['api-keys'],
          params: KeyParams,
          body: bodies.update,
          response: { 200: ApiKeySchema },
        },
      },
      async (request) => {
        const body = request.body;
        const updated = unwrap(
          await apiKeys.update(actorOf(request), requireOrgId(request), request.params.keyId, {
            ...(body.name === undefined ? {} : { name: body.name }),
            ...(body.scopes === undefined ? {} : { scopes: body.scopes }),
            ...(body.expiresAt === undefined ? {} : { expiresAt: date(body.expiresAt) }),
            ...(body.rateLimitPerMinute === undefined ? {} : { rateLimitPerMinute: body.rateLimitPerMinute }),
            ...(body.ipAllowlist === undefined ? {} : { ipAllowlist: body.ipAllowlist }),
            ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
          }),
        );
        return presentApiKey(updated.apiKey);
      },
    );

    app.post(
      '/v1/api-keys/:keyId/roll',
      {
        config: { permission: 'api_keys:write', auditAction: 'api_key.rolled' },
        schema: {
          operationId: 'rollApiKey',
          summary: 'Roll an API key: a new secret, the old one kept for a grace period',
          description:
            'Same key id and settings, a new secret shown once. The secrets that work now keep working for ' +
            '`gracePeriodSeconds` (0: they stop at once), so you can deploy the new one without downtime.',
          tags: ['api-keys'],
          params: KeyParams,
          body: RollApiKeyBody,
          response: { 200: RolledApiKeySchema },
        },
      },
      async (request) => {
        const rolled = unwrap(
          await apiKeys.roll(requireOrgId(request), request.params.keyId, request.body.gracePeriodSeconds),
        );
        return {
          apiKey: presentApiKey(rolled.apiKey),
          secret: rolled.secret,
          graceEndsAt: rolled.graceEndsAt.toISOString(),
        };
      },
    );

    app.delete(
      '/v1/api-keys/:keyId',
      {
        config: { permission: 'api_keys:write', auditAction: 'api_key.revoked' },
        schema: {
          operationId: 'revokeApiKey',
          summary: 'Revoke an API key',
          description:
            'Every secret of the key stops working on every replica within a second. It cannot be undone.',
          tags: ['api-keys'],
          params: KeyParams,
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        const revoked = await apiKeys.revoke(requireOrgId(request), request.params.keyId);
        if (!revoked) throw new KeelError('NOT_FOUND', `No active API key ${request.params.keyId}`);
        return reply.code(204).send(null);
      },
    );
  };
}
