import type { JobDefinition } from '../../infra/jobs/runner.ts';
import type { KeelModule } from '../../infra/module.ts';
import type { Runtime } from '../../infra/runtime.ts';
import { EVENT_IDS } from './ids.ts';
import { EVENTS_PERMISSIONS } from './permissions.ts';
import { eventsRoutes } from './routes.ts';
import { createEventsService, type EventsService } from './service.ts';

export {
  allEventDefinitions,
  defineEvent,
  type EventDefinition,
  type EventPayload,
  eventDefinition,
} from './catalogue.ts';
export {
  createEventsService,
  decodeCursor,
  EVENTS_CHANNEL,
  type Event,
  type EventsService,
  encodeCursor,
  type NewEvent,
} from './service.ts';

export const EVENTS_PRUNE_JOB = 'events.prune-expired';

export function createEventsModule(runtime: Runtime): KeelModule & { service: EventsService } {
  const service = createEventsService({
    db: runtime.database.db,
    clock: runtime.clock,
    newId: runtime.newId,
    log: runtime.log,
  });
  const jobs: JobDefinition[] = [
    {
      name: EVENTS_PRUNE_JOB,
      cron: '17 * * * *',
      handler: async (_payload, context) => {
        const deleted = await service.pruneExpired();
        if (deleted > 0) context.log.info({ deleted }, 'pruned expired events');
      },
    },
  ];
  return {
    name: 'events',
    vocabulary: { idPrefixes: EVENT_IDS, permissions: EVENTS_PERMISSIONS },
    service,
    routes: eventsRoutes(service),
    jobs,
    close: () => service.close(),
  };
}
