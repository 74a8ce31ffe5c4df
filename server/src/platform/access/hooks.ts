import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Config } from '../../config.ts';
import type { Permission, Principal } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { addRouteHooks } from '../../infra/http/route-hooks.ts';
import { isId } from '../../infra/ids.ts';
import { MINUTE_MS, type RateLimitRule, type RateLimitService } from '../rate-limit/index.ts';
import type { ApiKeyService } from './api-keys.ts';
import { type Allowlist, allowlistOf, limitSubject } from './domain/cidr.ts';
import { isAdminPermission, isSessionOnly, permissionDeclaration } from './domain/permissions.ts';
import { looksLikeApiKey } from './domain/tokens.ts';
import type { CachedKey } from './key-cache.ts';
import type { AccessService, SessionIdentity } from './service.ts';

export const SESSION_COOKIE = 'keel_session';
/** A signed-in user names the org a request acts for with this header (default: their first org). */
export const ORG_HEADER = 'keel-org';
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * Operational endpoints are neither authenticated nor limited: load balancer probes and metric
 * scrapers must never be answered 429, and the endpoints do no work a caller could abuse.
 */
export const UNLIMITED_ROUTES: ReadonlySet<string> = new Set(['/health/live', '/health/ready', '/metrics']);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route needs a caller (any API key or session) but no particular permission. */
    authenticated?: boolean;
  }
  interface FastifyRequest {
    /** The session behind a session-authenticated request, and how its token arrived. */
    session: { readonly id: string; readonly userId: string; readonly via: 'bearer' | 'cookie' } | undefined;
  }
}

type Credential = { kind: 'api_key' | 'session'; token: string; via: 'bearer' | 'cookie' };

interface Authenticated {
  readonly principal: Principal;
  readonly rules: readonly RateLimitRule[];
  readonly orgAdminIpAllowlist: Allowlist | undefined;
  readonly session?: { id: string; userId: string; via: 'bearer' | 'cookie' };
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0 && part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}

function readCredential(request: FastifyRequest): Credential | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    const token = match?.[1] ?? '';
    return { kind: looksLikeApiKey(token) ? 'api_key' : 'session', token, via: 'bearer' };
  }
  const cookie = readCookie(request.headers.cookie, SESSION_COOKIE);
  return cookie ? { kind: 'session', token: cookie, via: 'cookie' } : undefined;
}

export interface CookieSettings {
  readonly secure: boolean;
  readonly sameSite: 'strict' | 'lax';
}

/** The dashboard's session cookie: HttpOnly, SameSite, Secure (unless configured off). */
export function sessionCookie(token: string, expiresAt: Date, settings: CookieSettings): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    'Path=/',
    `Expires=${expiresAt.toUTCString()}`,
    'HttpOnly',
    `SameSite=${settings.sameSite === 'strict' ? 'Strict' : 'Lax'}`,
    ...(settings.secure ? ['Secure'] : []),
  ].join('; ');
}

export function clearedSessionCookie(settings: CookieSettings): string {
  return sessionCookie('', new Date(0), settings);
}

/**
 * Writes the permission a route needs into its OpenAPI operation: `security`, an
 * `x-keel-permission` extension and a line in the description. A permission missing from the
 * table is a programmer error and stops the app from starting.
 */
export function documentPermission(route: RouteOptions): void {
  const permission = route.config?.permission;
  const documented = (route.schema as Record<string, unknown> | undefined)?.['x-keel-permission'];
  if (!permission && route.config?.authenticated && !documented) {
    route.schema ??= {};
    const schema = route.schema as Record<string, unknown>;
    schema.security ??= [{ bearer: [] }];
    schema['x-keel-permission'] = 'authenticated';
    const line = 'Requires authentication (any API key or session), and no particular permission.';
    schema.description = schema.description ? `${String(schema.description)}\n\n${line}` : line;
    return;
  }
  if (!permission || documented) return;
  if (!permissionDeclaration(permission)) {
    throw new Error(
      `${String(route.method)} ${route.url} needs permission "${permission}", which no module declares (definePermissions)`,
    );
  }
  route.schema ??= {};
  const schema = route.schema as Record<string, unknown>;
  schema.security ??= [{ bearer: [] }];
  schema['x-keel-permission'] = permission;
  const line =
    `Requires permission \`${permission}\`` +
    (isSessionOnly(permission) ? ' (held by every signed-in user; API keys never hold it)' : '') +
    (isAdminPermission(permission) ? ' (an admin permission: subject to the admin IP allowlists)' : '') +
    '.';
  schema.description = schema.description ? `${String(schema.description)}\n\n${line}` : line;
}

/** Cookie-authenticated changes must come from Keel's own pages or an allowed origin (CSRF). */
function originAllowed(request: FastifyRequest, config: Config): boolean {
  const origin = request.headers.origin;
  // Browsers send Origin with every cross-site state-changing request; without one, no browser
  // on another site made this request.
  if (origin === undefined) return true;
  if (origin === new URL(config.http.publicUrl).origin) return true;
  if (config.http.corsOrigins.includes(origin)) return true;
  const host = request.headers.host;
  return host !== undefined && (origin === `https://${host}` || origin === `http://${host}`);
}

/**
 * Authentication, rate limiting and authorization for every route, in that order, on the root
 * instance. A request without a valid credential is limited per client address; one with a
 * valid credential per key (or user) and per org. Then the route's permission decides.
 */
export function accessHooks(deps: {
  config: Config;
  namespace: string;
  service: AccessService;
  apiKeys: ApiKeyService;
  rateLimits: RateLimitService;
}) {
  const { config, namespace, service, apiKeys, rateLimits } = deps;
  const limits = config.rateLimit;
  const operatorAllowlist =
    config.access.adminIpAllowlist.length > 0 ? allowlistOf(config.access.adminIpAllowlist) : undefined;

  const ipRule = (ip: string): RateLimitRule => ({
    name: 'ip',
    key: `rl:${namespace}:ip:${limitSubject(ip)}`,
    limit: limits.ipPerMinute,
    windowMs: MINUTE_MS,
  });
  // Rules checked together share the {…} hash tag: one Redis Cluster slot per org.
  const orgRule = (orgId: string, perMinute: number | null): RateLimitRule => ({
    name: 'org',
    key: `rl:{${namespace}:${orgId}}:org`,
    limit: perMinute ?? limits.orgPerMinute,
    windowMs: MINUTE_MS,
    subject: orgId,
  });

  // A key's limits change only with the key, and a changed key is a new cache entry: its rules
  // are built once per entry rather than once per request.
  const keyRules = new WeakMap<CachedKey, readonly RateLimitRule[]>();
  const rulesOf = (key: CachedKey): readonly RateLimitRule[] => {
    let rules = keyRules.get(key);
    if (!rules) {
      rules = [
        {
          name: 'key',
          key: `rl:{${namespace}:${key.orgId}}:key:${key.id}`,
          limit: key.rateLimitPerMinute ?? limits.keyPerMinute,
          windowMs: MINUTE_MS,
          subject: key.id,
        },
        orgRule(key.orgId, key.orgRateLimitPerMinute),
      ];
      keyRules.set(key, rules);
    }
    return rules;
  };

  const principals = new WeakMap<CachedKey, Principal>();
  const principalOf = (key: CachedKey): Principal => {
    let principal = principals.get(key);
    if (!principal) {
      principal = Object.freeze({
        kind: 'api_key',
        id: key.id,
        orgId: key.orgId,
        permissions: key.permissions,
      } as const);
      principals.set(key, principal);
    }
    return principal;
  };

  async function authenticate(
    request: FastifyRequest,
    credential: Credential,
  ): Promise<Authenticated | KeelError> {
    if (credential.kind === 'api_key') {
      const verified = await apiKeys.verify(credential.token, request.ip);
      if (!verified.ok) return new KeelError(verified.code, verified.detail);
      const key = verified.key;
      return {
        principal: principalOf(key),
        rules: rulesOf(key),
        orgAdminIpAllowlist: key.orgAdminIpAllowlist,
      };
    }
    const named = request.headers[ORG_HEADER];
    const orgId = typeof named === 'string' ? named : undefined;
    if (orgId !== undefined && !isId(orgId, 'org')) return new KeelError('NOT_FOUND', `No org ${orgId}`);
    const result = await service.authenticateSession(credential.token, orgId);
    if (!result.ok) return new KeelError(result.code, result.detail);
    const identity: SessionIdentity = result.identity;
    const org = identity.org;
    return {
      principal: {
        kind: 'session',
        id: identity.userId,
        userId: identity.userId,
        // A user in no org acts for none: org-scoped routes refuse them by permission.
        orgId: org?.id ?? '',
        permissions: identity.permissions,
      },
      rules: org
        ? [
            {
              name: 'user',
              key: `rl:{${namespace}:${org.id}}:user:${identity.userId}`,
              limit: limits.keyPerMinute,
              windowMs: MINUTE_MS,
              subject: identity.userId,
            },
            orgRule(org.id, org.rateLimitPerMinute),
          ]
        : [
            {
              name: 'user',
              key: `rl:${namespace}:user:${identity.userId}`,
              limit: limits.keyPerMinute,
              windowMs: MINUTE_MS,
            },
          ],
      orgAdminIpAllowlist:
        org && org.adminIpAllowlist.length > 0 ? allowlistOf(org.adminIpAllowlist) : undefined,
      session: { id: identity.sessionId, userId: identity.userId, via: credential.via },
    };
  }

  /**
   * The common case decided without a promise: an API key the cache holds, that may call the
   * route, within limits the local-first limiter can grant from its lease. Anything else (no key,
   * a key to load, a refusal, an admin route, a limit to ask Redis about) returns false having
   * consumed nothing, and the full check runs.
   */
  const admitCachedKey = (
    request: FastifyRequest,
    reply: FastifyReply,
    permission: Permission | undefined,
  ): boolean => {
    if (request.headers.authorization === undefined) return false;
    const credential = readCredential(request);
    if (credential?.kind !== 'api_key') return false;
    const verified = apiKeys.verifyCached(credential.token, request.ip);
    if (!verified?.ok) return false;
    const key = verified.key;
    if (permission !== undefined && (!key.permissions.has(permission) || isAdminPermission(permission))) {
      return false;
    }
    if (!rateLimits.tryAdmit(reply, rulesOf(key))) return false;
    request.principal = principalOf(key);
    request.orgId = key.orgId;
    return true;
  };

  /** The check of one route: `permission` and `authenticated` are the route's settings. */
  const guardFor = (permission: Permission | undefined, authenticated: boolean) => {
    const check = fullCheck(permission, authenticated);
    return (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void => {
      let admitted: boolean;
      try {
        admitted = admitCachedKey(request, reply, permission);
      } catch (error) {
        done(error as Error);
        return;
      }
      if (admitted) done();
      else check(request, reply).then(() => done(), done);
    };
  };

  /** Authentication, limits and authorization in full, for every case. */
  const fullCheck =
    (permission: Permission | undefined, authenticated: boolean) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const needsCaller = permission !== undefined || authenticated;
      const credential = readCredential(request);
      let outcome: Authenticated | KeelError | undefined;
      if (credential) {
        outcome = await authenticate(request, credential);
        // A stale dashboard cookie must not break public pages such as sign-in.
        if (outcome instanceof KeelError && credential.via === 'cookie' && !needsCaller) {
          reply.header('set-cookie', clearedSessionCookie(cookieSettings(config)));
          outcome = undefined;
        }
      }

      if (outcome === undefined || outcome instanceof KeelError) {
        // Failed credentials count against the address too: guessing keys costs quota.
        await rateLimits.enforce(reply, [ipRule(request.ip)], undefined);
        if (outcome) {
          if (outcome.code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer realm="keel"');
          throw outcome;
        }
        if (needsCaller) {
          reply.header('www-authenticate', 'Bearer realm="keel"');
          throw new KeelError(
            'UNAUTHENTICATED',
            'This route needs an API key or a session (Authorization: Bearer …)',
          );
        }
        return;
      }

      const { principal } = outcome;
      request.principal = principal;
      request.orgId = principal.orgId || undefined;
      if (outcome.session) request.session = outcome.session;
      await rateLimits.enforce(reply, outcome.rules, request.orgId);

      if (
        credential?.via === 'cookie' &&
        UNSAFE_METHODS.has(request.method) &&
        !originAllowed(request, config)
      ) {
        throw new KeelError('FORBIDDEN', 'Cross-site requests may not use the session cookie');
      }
      if (!permission) return;
      if (!principal.permissions.has(permission)) {
        throw new KeelError(
          'FORBIDDEN',
          principal.kind === 'api_key'
            ? `This API key lacks the scope ${permission}`
            : principal.orgId
              ? `Your role in this org lacks the permission ${permission}`
              : `This needs the permission ${permission} in an org, and you belong to none`,
        );
      }
      if (isAdminPermission(permission)) {
        for (const allowlist of [operatorAllowlist, outcome.orgAdminIpAllowlist]) {
          if (allowlist && !allowlist.allows(request.ip)) {
            throw new KeelError('IP_NOT_ALLOWED', `Admin routes may not be called from ${request.ip}`);
          }
        }
      }
    };

  return async (app: App) => {
    app.decorateRequest('principal', undefined);
    app.decorateRequest('session', undefined);
    app.addHook('onRoute', documentPermission);
    // Every route but the operational ones, each with its own settings bound once; and every
    // request that matches no route (limited per address like any anonymous call).
    addRouteHooks(app, (route) =>
      UNLIMITED_ROUTES.has(route.url)
        ? undefined
        : { onRequest: guardFor(route.config?.permission, route.config?.authenticated === true) },
    );
    app.unmatchedGuards.push(fullCheck(undefined, false));
  };
}

export function cookieSettings(config: Config): CookieSettings {
  return { secure: config.access.sessionCookieSecure, sameSite: config.access.sessionCookieSameSite };
}
