import { Type } from 'typebox';
import { defineEvent } from '../../platform/events/index.ts';

const subjectId = Type.String({ examples: ['sbj_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const verificationId = Type.String({ examples: ['vrf_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const outcome = Type.Union([
  Type.Literal('verified'),
  Type.Literal('not_verified'),
  Type.Literal('needs_review'),
]);
const provider = Type.Union([
  Type.Literal('world_id'),
  Type.Literal('passport'),
  Type.Literal('proof_of_humanity'),
  Type.Literal('brightid'),
]);

export const VERIFICATION_COMPLETED = defineEvent({
  type: 'verification.completed',
  version: 1,
  description: 'A personhood verification decided a verdict (verified, not_verified or needs_review).',
  payload: Type.Object({
    verificationId,
    subjectId,
    outcome,
    duplicateOf: Type.Union([subjectId, Type.Null()]),
    passedProviders: Type.Array(provider),
    evidence: Type.Array(
      Type.Object({
        provider,
        outcome: Type.String({ examples: ['passed'] }),
        errorCode: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
    expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    supersedes: Type.Union([verificationId, Type.Null()]),
  }),
});

export const VERIFICATION_EXPIRED = defineEvent({
  type: 'verification.expired',
  version: 1,
  description:
    'The evidence behind a verdict grew older than the policy allows or lapsed at the provider; Keel re-verified.',
  payload: Type.Object({
    verificationId,
    subjectId,
    previousOutcome: outcome,
    expiresAt: Type.String({ format: 'date-time' }),
    reverificationId: Type.Union([verificationId, Type.Null()], {
      description: 'The new verdict; null when no enabled provider could re-verify.',
    }),
    newOutcome: Type.Union([outcome, Type.Null()]),
  }),
});

export const HUMAN_DUPLICATE_DETECTED = defineEvent({
  type: 'human.duplicate_detected',
  version: 1,
  description: 'A subject presented a provider identifier that is already bound to another subject.',
  payload: Type.Object({
    subjectId,
    duplicateOf: subjectId,
    provider,
    verificationId,
  }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const IDENTITY_EVENTS = [VERIFICATION_COMPLETED, VERIFICATION_EXPIRED, HUMAN_DUPLICATE_DETECTED];
