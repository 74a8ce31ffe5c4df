import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../infra/http/auth.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { addRouteHooks } from '../../infra/http/route-hooks.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import { type AuditActor, MAX_ACTION_LENGTH } from './domain/chain.ts';
import type { AuditService } from './service.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The audit action recorded for calls to this mutating route (`api_key.created`); the default
     * is `METHOD /v1/route/:pattern`. `false`: the handler records its calls itself, as security
     * events (sign-in, sign-up), so the hook does not record them twice.
     */
    auditAction?: string | false;
  }
}

/** Calls with these methods under /v1 change state, so each one is recorded. */
export const AUDITED_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const AUDITED_PREFIX = '/v1/';

/** The actor of an authenticated request: the signed-in user, or the API key. */
export function auditActorOf(principal: Principal | undefined): AuditActor {
  if (!principal) return { kind: 'anonymous', id: null };
  if (principal.kind === 'api_key') return { kind: 'api_key', id: principal.id };
  return { kind: 'user', id: principal.userId ?? principal.id };
}

/** What a request tells about where it came from, for `audit.record(...)`. */
export function auditContextOf(request: FastifyRequest): {
  actor: AuditActor;
  requestId: string;
  ip: string;
  userAgent: string | undefined;
} {
  return {
    actor: auditActorOf(request.principal),
    requestId: request.id,
    ip: request.ip,
    userAgent: request.headers['user-agent'],
  };
}

/** The route's parameters, and the Location of a created resource (`/v1/api-keys/key_…`). */
function targetOf(params: unknown, location: unknown): Record<string, string> {
  const target = { ...(params as Record<string, string> | undefined) };
  if (typeof location === 'string' && location.startsWith('/')) target.location = location;
  return target;
}

/**
 * Records every mutating API call once its response is sent, in its own transaction. A call whose
 * org is unknown (no credentials, or credentials that failed) is not recorded here: the access
 * platform records failed sign-ins itself. A failed write is logged and counted, never turned
 * into an error for a client that already has its answer.
 */
export function auditHooks(deps: { service: AuditService; log: Logger; onFailure: () => void }) {
  const pending = new Set<Promise<unknown>>();
  return {
    hooks: async (app: App) => {
      // Only mutating /v1 routes are recorded; each gets its action bound once.
      addRouteHooks(app, (route) => {
        const methods = Array.isArray(route.method) ? route.method : [route.method];
        const configured = route.config?.auditAction;
        if (configured === false || !route.url.startsWith(AUDITED_PREFIX)) return undefined;
        if (!methods.some((method) => AUDITED_METHODS.has(method))) return undefined;
        return {
          onResponse: async (request: FastifyRequest, reply: FastifyReply) => {
            if (!AUDITED_METHODS.has(request.method)) return;
            const orgId = request.orgId ?? request.principal?.orgId;
            if (!orgId) return;
            const write = deps.service
              .record(undefined, {
                orgId,
                ...auditContextOf(request),
                action: configured ?? `${request.method} ${route.url}`.slice(0, MAX_ACTION_LENGTH),
                target: targetOf(request.params, reply.getHeader('location')),
                outcome: reply.statusCode < 400 ? 'success' : 'failure',
                status: reply.statusCode,
              })
              .catch((error: unknown) => {
                deps.onFailure();
                deps.log.error(
                  { err: error, orgId, requestId: request.id, route: route.url },
                  'audit entry could not be written',
                );
              })
              .finally(() => pending.delete(write));
            pending.add(write);
            await write;
          },
        };
      });
    },
    /** Resolves once every write started so far has finished (for shutdown and tests). */
    idle: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
