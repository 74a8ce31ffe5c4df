import { Type } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { EventPage, EventSchema, ListEventsQuery } from './schemas.ts';
import { type Event, type EventsService, InvalidCursorError } from './service.ts';

const present = (event: Event) => ({
  id: event.id,
  type: event.type,
  version: event.version,
  createdAt: event.createdAt.toISOString(),
  data: event.payload,
  cursor: event.cursor,
});

export function eventsRoutes(events: EventsService) {
  return async (app: App) => {
    app.get(
      '/v1/events',
      {
        config: { permission: 'events:read' },
        schema: {
          operationId: 'listEvents',
          summary: 'List the org’s events in order',
          description:
            'Events in the order they were committed, oldest first. Page with `after` = the last `cursor` ' +
            'you read; an event committed later never appears before one you have already read.',
          tags: ['events'],
          security: [{ bearer: [] }],
          querystring: ListEventsQuery,
          response: { 200: EventPage },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        try {
          const page = await events.list(orgId, {
            after: request.query.after,
            limit: request.query.limit,
            types: request.query.type,
          });
          return {
            data: page.map(present),
            nextCursor: page.length === request.query.limit ? page.at(-1)!.cursor : null,
          };
        } catch (error) {
          if (error instanceof InvalidCursorError) {
            throw new KeelError('VALIDATION_FAILED', 'after is not a cursor returned by this API', {
              errors: [{ path: '/after', in: 'query', message: 'is not a valid cursor' }],
            });
          }
          throw error;
        }
      },
    );

    app.get(
      '/v1/events/:id',
      {
        config: { permission: 'events:read' },
        schema: {
          operationId: 'getEvent',
          summary: 'Get one event',
          tags: ['events'],
          security: [{ bearer: [] }],
          params: Type.Object({ id: Type.String({ examples: ['evt_01jd7x8m3q9f2k5v6w7y8z9a0b'] }) }),
          response: { 200: EventSchema },
        },
      },
      async (request) => {
        const event = await events.get(requireOrgId(request), request.params.id);
        if (!event) throw new KeelError('NOT_FOUND', `No event ${request.params.id}`);
        return present(event);
      },
    );
  };
}
