import { Type } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import type { App } from '../../infra/http/pipeline.ts';
import {
  AttemptSchema,
  CreateEndpointBody,
  DeliveriesQuery,
  DeliveryParams,
  DeliverySchema,
  EndpointParams,
  EndpointSchema,
  EndpointWithSecret,
  PageQuery,
  pageOf,
  RecoverBody,
  RotatedSecret,
  RotateSecretBody,
  UpdateEndpointBody,
} from './schemas.ts';
import type { WebhooksService } from './service.ts';
import type { AttemptRow, DeliveryRow, EndpointRow } from './store.ts';

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export const presentEndpoint = (row: EndpointRow) => ({
  id: row.id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  disabledReason: row.disabled_reason,
  ordered: row.ordered,
  rateLimitPerSecond: row.rate_limit_per_second,
  failingSince: iso(row.failing_since),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

const presentDelivery = (row: DeliveryRow) => ({
  id: row.id,
  endpointId: row.endpoint_id,
  eventId: row.event_id,
  eventType: row.event_type,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.status === 'pending' ? row.next_attempt_at.toISOString() : null,
  lastResponseStatus: row.last_response_status,
  createdAt: row.created_at.toISOString(),
});

const presentAttempt = (row: AttemptRow) => ({
  id: row.id,
  attempt: row.attempt,
  startedAt: row.started_at.toISOString(),
  durationMs: row.duration_ms,
  responseStatus: row.response_status,
  responseExcerpt: row.response_excerpt,
  error: row.error,
});

const common = { tags: ['webhooks'], security: [{ bearer: [] }] };

export function webhooksRoutes(service: WebhooksService) {
  return async (app: App) => {
    app.post(
      '/v1/webhooks/endpoints',
      {
        config: { permission: 'webhooks:write', idempotent: true },
        schema: {
          ...common,
          operationId: 'createWebhookEndpoint',
          summary: 'Create a webhook endpoint',
          description: 'Returns the signing secret once. Deliveries are signed per Standard Webhooks.',
          body: CreateEndpointBody,
          response: { 201: EndpointWithSecret },
        },
      },
      async (request, reply) => {
        const { endpoint, secret } = await service.createEndpoint(requireOrgId(request), request.body);
        return reply.code(201).send({ ...presentEndpoint(endpoint), secret });
      },
    );

    app.get(
      '/v1/webhooks/endpoints',
      {
        config: { permission: 'webhooks:read' },
        schema: {
          ...common,
          operationId: 'listWebhookEndpoints',
          summary: 'List webhook endpoints',
          querystring: PageQuery,
          response: { 200: pageOf(EndpointSchema) },
        },
      },
      async (request) => {
        const page = await service.listEndpoints(requireOrgId(request), request.query);
        return { data: page.data.map(presentEndpoint), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/webhooks/endpoints/:endpointId',
      {
        config: { permission: 'webhooks:read' },
        schema: {
          ...common,
          operationId: 'getWebhookEndpoint',
          summary: 'Get a webhook endpoint',
          params: EndpointParams,
          response: { 200: EndpointSchema },
        },
      },
      async (request) =>
        presentEndpoint(await service.getEndpoint(requireOrgId(request), request.params.endpointId)),
    );

    app.patch(
      '/v1/webhooks/endpoints/:endpointId',
      {
        config: { permission: 'webhooks:write' },
        schema: {
          ...common,
          operationId: 'updateWebhookEndpoint',
          summary: 'Update, pause or re-enable a webhook endpoint',
          params: EndpointParams,
          body: UpdateEndpointBody,
          response: { 200: EndpointSchema },
        },
      },
      async (request) =>
        presentEndpoint(
          await service.updateEndpoint(requireOrgId(request), request.params.endpointId, request.body),
        ),
    );

    app.delete(
      '/v1/webhooks/endpoints/:endpointId',
      {
        config: { permission: 'webhooks:write' },
        schema: {
          ...common,
          operationId: 'deleteWebhookEndpoint',
          summary: 'Delete a webhook endpoint and its delivery history',
          params: EndpointParams,
          response: { 204: Type.Null({ description: 'Deleted.' }) },
        },
      },
      async (request, reply) => {
        await service.deleteEndpoint(requireOrgId(request), request.params.endpointId);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/v1/webhooks/endpoints/:endpointId/rotate-secret',
      {
        config: { permission: 'webhooks:write' },
        schema: {
          ...common,
          operationId: 'rotateWebhookSecret',
          summary: 'Rotate the signing secret',
          description:
            'Returns the new secret once. Until `previousSecretExpiresAt`, each delivery carries two ' +
            'signatures (old and new), so receivers switch without missing one.',
          params: EndpointParams,
          body: RotateSecretBody,
          response: { 200: RotatedSecret },
        },
      },
      async (request) => {
        const rotated = await service.rotateSecret(
          requireOrgId(request),
          request.params.endpointId,
          request.body?.graceSeconds,
        );
        return { secret: rotated.secret, previousSecretExpiresAt: iso(rotated.previousSecretExpiresAt) };
      },
    );

    app.post(
      '/v1/webhooks/endpoints/:endpointId/test',
      {
        config: { permission: 'webhooks:write' },
        schema: {
          ...common,
          operationId: 'sendWebhookTestEvent',
          summary: 'Send a test event to this endpoint',
          params: EndpointParams,
          response: { 202: DeliverySchema },
        },
      },
      async (request, reply) =>
        reply
          .code(202)
          .send(
            presentDelivery(await service.sendTestEvent(requireOrgId(request), request.params.endpointId)),
          ),
    );

    app.post(
      '/v1/webhooks/endpoints/:endpointId/recover',
      {
        config: { permission: 'webhooks:write' },
        schema: {
          ...common,
          operationId: 'recoverWebhookDeliveries',
          summary: 'Requeue every failed delivery since a time',
          params: EndpointParams,
          body: RecoverBody,
          response: { 202: Type.Object({ requeued: Type.Integer({ examples: [42] }) }) },
        },
      },
      async (request, reply) => {
        const requeued = await service.recover(
          requireOrgId(request),
          request.params.endpointId,
          new Date(request.body.since),
        );
        return reply.code(202).send({ requeued });
      },
    );

    app.get(
      '/v1/webhooks/endpoints/:endpointId/deliveries',
      {
        config: { permission: 'webhooks:read' },
        schema: {
          ...common,
          operationId: 'listWebhookDeliveries',
          summary: 'List an endpoint’s deliveries, newest first',
          params: EndpointParams,
          querystring: DeliveriesQuery,
          response: { 200: pageOf(DeliverySchema) },
        },
      },
      async (request) => {
        const page = await service.listDeliveries(
          requireOrgId(request),
          request.params.endpointId,
          request.query,
        );
        return { data: page.data.map(presentDelivery), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/webhooks/deliveries/:deliveryId/attempts',
      {
        config: { permission: 'webhooks:read' },
        schema: {
          ...common,
          operationId: 'listWebhookAttempts',
          summary: 'List a delivery’s attempts',
          params: DeliveryParams,
          response: { 200: Type.Object({ data: Type.Array(AttemptSchema) }) },
        },
      },
      async (request) => ({
        data: (await service.listAttempts(requireOrgId(request), request.params.deliveryId)).map(
          presentAttempt,
        ),
      }),
    );

    app.post(
      '/v1/webhooks/deliveries/:deliveryId/retry',
      {
        config: { permission: 'webhooks:write' },
        schema: {
          ...common,
          operationId: 'retryWebhookDelivery',
          summary: 'Send one delivery again now',
          params: DeliveryParams,
          response: { 202: DeliverySchema },
        },
      },
      async (request, reply) =>
        reply
          .code(202)
          .send(
            presentDelivery(await service.retryDelivery(requireOrgId(request), request.params.deliveryId)),
          ),
    );
  };
}
