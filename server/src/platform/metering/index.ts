import type { KeelModule } from '../../infra/module.ts';
import { UNMATCHED_ROUTE } from '../../infra/observability/metrics.ts';
import type { Runtime } from '../../infra/runtime.ts';
import type { EventsService } from '../events/index.ts';
import { METERING_ERRORS } from './errors.ts';
import { METERING_EVENTS } from './events.ts';
import { meteringJobs } from './jobs.ts';
import { METERING_PERMISSIONS } from './permissions.ts';
import { meteringRoutes } from './routes.ts';
import { createMeteringService, type MeteringService } from './service.ts';

export { FLUSH_INTERVAL_MS, MAX_BUFFERED_COUNTERS } from './aggregator.ts';
export { type Aggregation, API_REQUESTS, defineMeter, type MeterDefinition } from './catalogue.ts';
export { QUOTA_THRESHOLDS_PERCENT, USAGE_THRESHOLD_REACHED } from './events.ts';
export { USAGE_READ, USAGE_WRITE } from './routes.ts';
export {
  createMeteringService,
  MAX_EVENTS_PER_BATCH,
  type MeterEventInput,
  type MeteringService,
  type RecordedEvents,
  type Result,
} from './service.ts';

/**
 * Usage metering (docs/usage.md): authenticated requests counted in memory and flushed in
 * batches, meter events recorded idempotently, the usage API, and monthly quotas that emit
 * usage.threshold_reached. Other modules record usage through `service`.
 */
export function createMeteringModule(
  runtime: Runtime,
  deps: { events: Pick<EventsService, 'emit'> },
): KeelModule & { service: MeteringService } {
  const service = createMeteringService({
    database: runtime.database,
    clock: runtime.clock,
    log: runtime.log.child({ module: 'metering' }),
    events: deps.events,
    registry: runtime.metrics.registry,
  });
  return {
    name: 'metering',
    vocabulary: { errors: METERING_ERRORS, permissions: METERING_PERMISSIONS, events: METERING_EVENTS },
    service,
    hooks: async (app) => {
      if (!runtime.config.usage.meterRequests) return;
      // `METHOD /pattern` per route, made once: the route's config object is the same for each
      // of its requests (and one object serves every unmatched path).
      const routeLabels = new WeakMap<object, string>();
      // Synchronous and allocation-light: a few map lookups per authenticated request, no I/O.
      app.addHook('onResponse', (request, _reply, done) => {
        const principal = request.principal;
        if (principal?.orgId) {
          const config = request.routeOptions.config;
          let route = routeLabels.get(config);
          if (route === undefined) {
            route = config.url === undefined ? UNMATCHED_ROUTE : `${config.method} ${config.url}`;
            routeLabels.set(config, route);
          }
          service.countRequest(principal.orgId, principal.id, route);
        }
        done();
      });
    },
    routes: meteringRoutes(service),
    jobs: meteringJobs(service),
    close: () => service.close(),
  };
}
