import { Type } from 'typebox';
import { defineEvent } from '../events/index.ts';

export const WEBHOOK_ENDPOINT_DISABLED = defineEvent({
  type: 'webhook_endpoint.disabled',
  version: 1,
  description: 'Keel disabled a webhook endpoint: it answered 410 Gone, or failed every delivery for 5 days.',
  payload: Type.Object({
    endpointId: Type.String({ examples: ['whe_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    reason: Type.String({ examples: ['failing for 5 days'] }),
  }),
});

/** Sent only by "send test event", to the one endpoint it names. */
export const WEBHOOK_TEST = defineEvent({
  type: 'webhook.test',
  version: 1,
  description: 'A test event sent on request to check that an endpoint receives and verifies deliveries.',
  payload: Type.Object({
    endpointId: Type.String(),
    message: Type.String({ examples: ['This is a test event from Keel.'] }),
  }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const WEBHOOK_EVENTS = [WEBHOOK_ENDPOINT_DISABLED, WEBHOOK_TEST];
