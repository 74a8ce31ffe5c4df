import type { FastifyInstance, RouteOptions } from 'fastify';

/** The request lifecycle hooks a feature may attach to a route. */
export interface RouteHooks {
  readonly onRequest?: NonNullable<RouteOptions['onRequest']>;
  readonly preHandler?: NonNullable<RouteOptions['preHandler']>;
  readonly onSend?: NonNullable<RouteOptions['onSend']>;
  readonly onResponse?: NonNullable<RouteOptions['onResponse']>;
}

const HOOK_NAMES = ['onRequest', 'preHandler', 'onSend', 'onResponse'] as const;

/**
 * Attaches hooks to each route registered from now on for which `hooksFor(route)` returns some.
 * A feature's hooks then run only on the routes it concerns (idempotency on idempotent routes,
 * audit on mutating /v1 routes…), and read the route's settings once, here, rather than on every
 * request. Route hooks run after the global ones of the same kind, in the order features added
 * them; requests that match no route are the not-found handler's business (see pipeline.ts).
 */
export function addRouteHooks(
  app: FastifyInstance,
  hooksFor: (route: RouteOptions) => RouteHooks | undefined,
): void {
  app.addHook('onRoute', (route) => {
    const hooks = hooksFor(route);
    if (!hooks) return;
    const target = route as unknown as Record<string, unknown>;
    for (const name of HOOK_NAMES) {
      const hook = hooks[name];
      if (hook === undefined) continue;
      const existing = target[name];
      const added = Array.isArray(hook) ? hook : [hook];
      target[name] =
        existing === undefined || existing === null
          ? added
          : Array.isArray(existing)
            ? [...existing, ...added]
            : [existing, ...added];
    }
  });
}
