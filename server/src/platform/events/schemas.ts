import { Type } from 'typebox';

/** Largest page of events one request returns. */
export const MAX_EVENTS_PAGE = 100;
export const DEFAULT_EVENTS_PAGE = 50;

export const EventSchema = Type.Object(
  {
    id: Type.String({ description: 'Event id.', examples: ['evt_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    type: Type.String({ description: 'What happened.', examples: ['transfer.posted'] }),
    version: Type.Integer({ description: 'Version of the payload schema of this type.', examples: [1] }),
    createdAt: Type.String({ format: 'date-time', examples: ['2026-11-21T12:00:00.000Z'] }),
    data: Type.Unknown({ description: 'The payload, as documented for the type under `webhooks`.' }),
    cursor: Type.String({ description: 'Pass as `after` to list the events that follow this one.' }),
  },
  { $id: 'Event', title: 'Event' },
);

export const ListEventsQuery = Type.Object({
  after: Type.Optional(Type.String({ description: 'Cursor of the last event already read.' })),
  limit: Type.Integer({ minimum: 1, maximum: MAX_EVENTS_PAGE, default: DEFAULT_EVENTS_PAGE }),
  type: Type.Optional(
    Type.Array(Type.String({ examples: ['transfer.posted'] }), {
      description: 'Only events of these types (repeat the parameter for several).',
      maxItems: 50,
    }),
  ),
});

export const EventPage = Type.Object({
  data: Type.Array(EventSchema),
  nextCursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Cursor to continue from; null when this page reached the end of the stream for now.',
  }),
});
