import { Type } from 'typebox';
import { defineEvent } from '../events/index.ts';

export const RATE_LIMIT_EXCEEDED = defineEvent({
  type: 'rate_limit.exceeded',
  version: 1,
  description:
    'A limit of the org denied requests. Sent at most once per limit and window, however many requests it denies.',
  payload: Type.Object({
    policy: Type.String({ description: 'Which limit: key, org or user.', examples: ['key'] }),
    subject: Type.String({
      description: 'The limited key, org or user id.',
      examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'],
    }),
    quota: Type.Integer({ description: 'Requests allowed per window.', examples: [1000] }),
    windowSeconds: Type.Integer({ examples: [60] }),
    retryAfterSeconds: Type.Integer({ examples: [3] }),
  }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const RATE_LIMIT_EVENTS = [RATE_LIMIT_EXCEEDED];
