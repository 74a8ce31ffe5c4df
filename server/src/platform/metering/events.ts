import { Type } from 'typebox';
import { defineEvent } from '../events/index.ts';

/** The quota thresholds, in percent, that emit usage.threshold_reached. */
export const QUOTA_THRESHOLDS_PERCENT = [80, 100] as const;

export const USAGE_THRESHOLD_REACHED = defineEvent({
  type: 'usage.threshold_reached',
  version: 1,
  description:
    'Usage of a meter reached 80 % or 100 % of the org’s quota for the month. Sent once per threshold, quota and month.',
  payload: Type.Object({
    meter: Type.String({ examples: ['api_requests'] }),
    quota: Type.String({
      description: 'The quota for the period, as a decimal string.',
      examples: ['100000'],
    }),
    used: Type.String({
      description: 'Usage in the period when the threshold was reached, as a decimal string.',
      examples: ['80012'],
    }),
    threshold: Type.Union([Type.Literal(80), Type.Literal(100)], {
      description: 'Percent of the quota reached.',
      examples: [80],
    }),
    periodStart: Type.String({
      format: 'date-time',
      description: 'Start of the UTC calendar month the quota applies to.',
      examples: ['2026-11-01T00:00:00.000Z'],
    }),
  }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const METERING_EVENTS = [USAGE_THRESHOLD_REACHED];
