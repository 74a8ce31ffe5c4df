import { type TSchema, Type } from 'typebox';
import { AGGREGATIONS, MAX_METER_NAME_LENGTH, METER_NAME_PATTERN } from './catalogue.ts';
import { DECIMAL_PATTERN } from './domain/values.ts';
import { MAX_EVENTS_PER_BATCH } from './service.ts';

/** Longest event id, source and subject accepted. */
export const MAX_EVENT_ATTRIBUTE_LENGTH = 255;
/** Most members of an event's `data` object. */
export const MAX_EVENT_DATA_PROPERTIES = 32;
export const MAX_METER_DESCRIPTION_LENGTH = 500;
export const MAX_METER_UNIT_LENGTH = 32;
/** Most meters one usage query may name. */
export const MAX_QUERY_METERS = 20;

const Timestamp = (description: string) =>
  Type.String({ format: 'date-time', description, examples: ['2026-11-23T10:00:00.000Z'] });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const MeterName = Type.String({
  pattern: METER_NAME_PATTERN,
  maxLength: MAX_METER_NAME_LENGTH,
  description: 'Meter name: lower-case words joined by `.`, `_` or `-`.',
  examples: ['image.renders'],
});

const Aggregation = Type.Union(
  [Type.Literal(AGGREGATIONS[0]), Type.Literal(AGGREGATIONS[1]), Type.Literal(AGGREGATIONS[2])],
  {
    description:
      'How events add up per period: `sum` of their values, `count` of events, or the `max` value.',
    examples: ['sum'],
  },
);

const Decimal = Type.String({
  pattern: DECIMAL_PATTERN,
  description: 'A non-negative decimal, as a string (up to 30 integer and 18 fractional digits).',
  examples: ['12.5'],
});

// ---------------------------------------------------------------------------------------------
// Meter events

export const MeterEventSchema = Type.Object(
  {
    specversion: Type.Optional(
      Type.Literal('1.0', { description: 'CloudEvents version; only 1.0 is accepted.', examples: ['1.0'] }),
    ),
    id: Type.String({
      minLength: 1,
      maxLength: MAX_EVENT_ATTRIBUTE_LENGTH,
      description:
        'Unique per org (CloudEvents scopes ids to `source`; Keel is stricter). An id already ' +
        'received is reported as `duplicate` and not counted again.',
      examples: ['render-7f3a9c'],
    }),
    type: Type.String({
      pattern: METER_NAME_PATTERN,
      maxLength: MAX_METER_NAME_LENGTH,
      description: 'The meter this event counts towards: one the org defined with POST /v1/usage/meters.',
      examples: ['image.renders'],
    }),
    source: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_EVENT_ATTRIBUTE_LENGTH,
        description: 'What produced the event (a URI reference), kept with the event.',
        examples: ['/workers/renderer-3'],
      }),
    ),
    subject: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_EVENT_ATTRIBUTE_LENGTH,
        description: 'Whom or what the usage is about in your product (a customer id), kept with the event.',
        examples: ['customer-42'],
      }),
    ),
    time: Type.Optional(
      Timestamp(
        'When the usage happened; default: when Keel received it. At most 7 days ago and 5 minutes ahead.',
      ),
    ),
    datacontenttype: Type.Optional(Type.Literal('application/json', { examples: ['application/json'] })),
    data: Type.Optional(
      Type.Object(
        {
          value: Type.Optional(
            Type.Union([Decimal, Type.Number({ minimum: 0 })], {
              description:
                'The amount used: required by `sum` and `max` meters, ignored by `count` meters. A ' +
                'decimal string, or a JSON number that is exact as written.',
              examples: ['12.5', 3],
            }),
          ),
        },
        {
          additionalProperties: true,
          maxProperties: MAX_EVENT_DATA_PROPERTIES,
          description: 'Event data; other members are kept with the event.',
          examples: [{ value: 3 }],
        },
      ),
    ),
  },
  { additionalProperties: false, description: 'A meter event with CloudEvents 1.0 attribute names.' },
);

export const IngestBody = Type.Union(
  [
    MeterEventSchema,
    Type.Array(MeterEventSchema, {
      minItems: 1,
      maxItems: MAX_EVENTS_PER_BATCH,
      description: `A batch of up to ${MAX_EVENTS_PER_BATCH} events, recorded together or not at all.`,
    }),
  ],
  {
    description: 'One meter event, or an array of them (like a CloudEvents JSON batch).',
    examples: [{ id: 'render-7f3a9c', type: 'image.renders', data: { value: 3 } }],
  },
);

export const IngestResult = Type.Object({
  accepted: Type.Integer({ description: 'Events counted now.', examples: [1] }),
  duplicates: Type.Integer({
    description: 'Events whose id was received before: not counted again.',
    examples: [0],
  }),
  results: Type.Array(
    Type.Object({
      id: Type.String({ examples: ['render-7f3a9c'] }),
      status: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate')], { examples: ['accepted'] }),
    }),
    { description: 'One entry per event sent, in order.' },
  ),
});

// ---------------------------------------------------------------------------------------------
// Meters

export const CreateMeterBody = Type.Object(
  {
    name: MeterName,
    aggregation: Aggregation,
    description: Type.Optional(
      Type.String({ maxLength: MAX_METER_DESCRIPTION_LENGTH, examples: ['Images rendered'] }),
    ),
    unit: Type.Optional(
      Type.String({ minLength: 1, maxLength: MAX_METER_UNIT_LENGTH, examples: ['images'] }),
    ),
  },
  { additionalProperties: false },
);

export const MeterSchema = Type.Object({
  name: MeterName,
  aggregation: Aggregation,
  description: Nullable(Type.String({ examples: ['Images rendered'] })),
  unit: Nullable(Type.String({ examples: ['images'] })),
  builtIn: Type.Boolean({
    description: 'Measured by Keel itself (api_requests, module meters): every org has it.',
    examples: [false],
  }),
  createdAt: Nullable(Timestamp('When the org defined it; null for built-in meters.')),
});

export const MeterList = Type.Object({ data: Type.Array(MeterSchema) });

// ---------------------------------------------------------------------------------------------
// Usage

export const UsageQuerystring = Type.Object(
  {
    granularity: Type.Union([Type.Literal('hour'), Type.Literal('day')], {
      default: 'day',
      description: 'Period of each data point: a UTC hour or a UTC day.',
      examples: ['hour'],
    }),
    from: Type.Optional(
      Timestamp('Start, rounded down to the period; default: 24 hours (hour) or 30 days (day) before `to`.'),
    ),
    to: Type.Optional(Timestamp('End (exclusive), rounded up to the period; default: now.')),
    meter: Type.Optional(
      Type.Array(MeterName, {
        maxItems: MAX_QUERY_METERS,
        description: 'Only these meters (repeat the parameter for several); default: every meter.',
      }),
    ),
    groupBy: Type.Optional(
      Type.Array(Type.Union([Type.Literal('meter'), Type.Literal('key'), Type.Literal('route')]), {
        uniqueItems: true,
        description:
          'Split each meter’s data points by `key` (API key or user) and/or `route`. Data points are ' +
          'always per meter (`meter` is the default); repeat the parameter for several.',
        examples: [['key']],
      }),
    ),
  },
  { additionalProperties: false },
);

export const UsageReportSchema = Type.Object({
  granularity: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
  from: Timestamp('Start of the first period read.'),
  to: Timestamp('End (exclusive) of the last period read.'),
  data: Type.Array(
    Type.Object({
      periodStart: Timestamp('Start of the UTC hour or day.'),
      meter: Type.String({ examples: ['api_requests'] }),
      value: Type.String({
        description: 'The meter’s aggregate over the period (its count, sum or max), as a decimal string.',
        examples: ['1250'],
      }),
      count: Type.String({
        description: 'Events (requests, for api_requests) in the period.',
        examples: ['1250'],
      }),
      keyId: Type.Optional(
        Nullable(
          Type.String({
            description: 'With groupBy=key: the API key.',
            examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'],
          }),
        ),
      ),
      userId: Type.Optional(
        Nullable(
          Type.String({
            description: 'With groupBy=key: the signed-in user (dashboard requests).',
            examples: ['usr_01jd7x8m3q9f2k5v6w7y8z9a0b'],
          }),
        ),
      ),
      route: Type.Optional(
        Nullable(
          Type.String({
            description: 'With groupBy=route: method and route pattern.',
            examples: ['GET /v1/org'],
          }),
        ),
      ),
    }),
    { description: 'Only periods with usage appear, ordered by period, then meter.' },
  ),
});

// ---------------------------------------------------------------------------------------------
// Quotas

export const QuotaParams = Type.Object({ meter: MeterName });

export const SetQuotaBody = Type.Object(
  {
    quota: Type.String({
      pattern: `^(?!0(\\.0+)?$)${DECIMAL_PATTERN.slice(1)}`,
      description:
        'Most usage per UTC calendar month (in the meter’s aggregation): a positive decimal string.',
      examples: ['100000'],
    }),
  },
  { additionalProperties: false },
);

export const QuotaSchema = Type.Object({
  meter: Type.String({ examples: ['api_requests'] }),
  quota: Type.String({ examples: ['100000'] }),
  used: Type.String({ description: 'Usage in the current period.', examples: ['81234'] }),
  periodStart: Timestamp('Start of the current period: the UTC month.'),
  periodEnd: Timestamp('End (exclusive) of the current period.'),
  createdAt: Timestamp('When the quota was first set.'),
  updatedAt: Timestamp('When the quota was last changed.'),
});

export const QuotaList = Type.Object({ data: Type.Array(QuotaSchema) });
