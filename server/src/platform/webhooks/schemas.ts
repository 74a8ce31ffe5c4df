import { Type } from 'typebox';
import { MAX_EVENT_TYPES_PER_ENDPOINT, MAX_ROTATION_GRACE_SECONDS } from './service.ts';

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;
/** Longest endpoint URL accepted. */
export const MAX_URL_LENGTH = 2048;
export const MAX_DESCRIPTION_LENGTH = 500;
/** Highest per-endpoint delivery rate one may set. */
export const MAX_RATE_LIMIT_PER_SECOND = 10_000;

const EndpointId = Type.String({ examples: ['whe_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const DeliveryId = Type.String({ examples: ['whd_01jd7x8m3q9f2k5v6w7y8z9a0b'] });

const url = Type.String({
  maxLength: MAX_URL_LENGTH,
  description:
    'Where deliveries are POSTed. https or http; hosts that resolve to private, loopback, link-local or ' +
    'cloud-metadata addresses are refused unless the operator allowlists them (SSRF_ALLOWLIST).',
  examples: ['https://api.example.com/keel/webhooks'],
});
const eventTypes = Type.Array(Type.String({ examples: ['transfer.posted'] }), {
  maxItems: MAX_EVENT_TYPES_PER_ENDPOINT,
  uniqueItems: true,
  description: 'Event types to deliver; empty delivers every type.',
});
const ordered = Type.Boolean({
  description: 'Deliver one at a time in event order: a failing delivery holds back the ones after it.',
});
const rateLimitPerSecond = Type.Union(
  [Type.Integer({ minimum: 1, maximum: MAX_RATE_LIMIT_PER_SECOND }), Type.Null()],
  { description: 'Most deliveries per second to this endpoint; null for no limit.' },
);

export const CreateEndpointBody = Type.Object(
  {
    url,
    description: Type.Optional(
      Type.String({ maxLength: MAX_DESCRIPTION_LENGTH, examples: ['Production payments'] }),
    ),
    eventTypes: Type.Optional(eventTypes),
    ordered: Type.Optional(ordered),
    rateLimitPerSecond: Type.Optional(rateLimitPerSecond),
  },
  { additionalProperties: false },
);

export const UpdateEndpointBody = Type.Object(
  {
    url: Type.Optional(url),
    description: Type.Optional(Type.String({ maxLength: MAX_DESCRIPTION_LENGTH })),
    eventTypes: Type.Optional(eventTypes),
    ordered: Type.Optional(ordered),
    rateLimitPerSecond: Type.Optional(rateLimitPerSecond),
    enabled: Type.Optional(
      Type.Boolean({ description: 'Enable again after Keel disabled it, or pause deliveries.' }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const EndpointSchema = Type.Object(
  {
    id: EndpointId,
    url: Type.String(),
    description: Type.String(),
    eventTypes: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    disabledReason: Type.Union([Type.String(), Type.Null()], {
      examples: ['the receiver answered 410 Gone'],
    }),
    ordered: Type.Boolean(),
    rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]),
    failingSince: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When deliveries started failing; the endpoint is disabled 5 days after.',
    }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'WebhookEndpoint', title: 'WebhookEndpoint' },
);

export const EndpointWithSecret = Type.Intersect([
  EndpointSchema,
  Type.Object({
    secret: Type.String({
      description: 'The signing secret (Standard Webhooks). Shown once: store it now.',
      examples: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
    }),
  }),
]);

export const RotateSecretBody = Type.Object(
  {
    graceSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_ROTATION_GRACE_SECONDS,
        description: 'How long the old secret keeps signing beside the new one. Default 86400 (24 h).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RotatedSecret = Type.Object({
  secret: Type.String({ description: 'The new signing secret. Shown once.' }),
  previousSecretExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const DeliverySchema = Type.Object(
  {
    id: DeliveryId,
    endpointId: EndpointId,
    eventId: Type.String({ description: 'Also the `webhook-id` header: receivers deduplicate on it.' }),
    eventType: Type.String(),
    status: Type.Union([
      Type.Literal('pending'),
      Type.Literal('sending'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
    ]),
    attempts: Type.Integer(),
    nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastResponseStatus: Type.Union([Type.Integer(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'WebhookDelivery', title: 'WebhookDelivery' },
);

export const AttemptSchema = Type.Object(
  {
    id: Type.String(),
    attempt: Type.Integer({ description: 'The attempt number, from 1.' }),
    startedAt: Type.String({ format: 'date-time' }),
    durationMs: Type.Integer(),
    responseStatus: Type.Union([Type.Integer(), Type.Null()]),
    responseExcerpt: Type.Union([Type.String(), Type.Null()], {
      description: 'The first 1 KiB of the answer.',
    }),
    error: Type.Union([Type.String(), Type.Null()], { examples: ['connect ECONNREFUSED'] }),
  },
  { $id: 'WebhookAttempt', title: 'WebhookAttempt' },
);

export const PageQuery = Type.Object({
  cursor: Type.Optional(Type.String()),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE }),
});

export const DeliveriesQuery = Type.Intersect([
  PageQuery,
  Type.Object({
    status: Type.Optional(
      Type.Union([
        Type.Literal('pending'),
        Type.Literal('sending'),
        Type.Literal('succeeded'),
        Type.Literal('failed'),
      ]),
    ),
  }),
]);

export const RecoverBody = Type.Object(
  {
    since: Type.String({
      format: 'date-time',
      description: 'Requeue failed deliveries created since this time.',
    }),
  },
  { additionalProperties: false },
);

export const pageOf = <T extends import('typebox').TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export const EndpointParams = Type.Object({ endpointId: EndpointId });
export const DeliveryParams = Type.Object({ deliveryId: DeliveryId });
