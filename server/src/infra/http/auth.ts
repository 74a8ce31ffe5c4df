import { KeelError } from './errors.ts';

/**
 * The contract between the access platform, which authenticates requests, and every route,
 * which declares what it needs. The access plugin resolves `request.principal` (and
 * `request.orgId`) from `Authorization: Bearer <api key | session token>` or the session cookie,
 * then enforces the route's `config.permission`; a route without one is public.
 *
 * Permissions are `<resource>:<action>` strings, decided in one role → permission table owned
 * by the access platform.
 */
export type Permission = `${string}:${string}`;

export interface Principal {
  readonly kind: 'api_key' | 'session';
  /** The key id (`key_…`) or the user id (`usr_…`). */
  readonly id: string;
  readonly orgId: string;
  /** For sessions, the signed-in user. */
  readonly userId?: string;
  readonly permissions: ReadonlySet<Permission>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** The permission a caller needs. Absent: the route is public (still rate limited per IP). */
    permission?: Permission;
  }
}

/**
 * The org an org-scoped handler acts for. Routes with a `permission` are authenticated by the
 * access hooks before the handler runs; this check makes a handler refuse to run unscoped even
 * if a route were registered without them.
 */
export function requireOrgId(request: { orgId: string | undefined }): string {
  if (!request.orgId) throw new KeelError('UNAUTHENTICATED', 'This route needs an API key or a session');
  return request.orgId;
}
