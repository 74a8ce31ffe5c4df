import type { Mailer } from '../../infra/mail/index.ts';
import type { KeelModule } from '../../infra/module.ts';
import type { Runtime } from '../../infra/runtime.ts';
import type { AuditService } from '../audit/index.ts';
import type { EventsService } from '../events/index.ts';
import {
  createRateLimitService,
  deploymentNamespace,
  RATE_LIMIT_EVENTS,
  type RateLimitService,
} from '../rate-limit/index.ts';
import { type ApiKeyService, createApiKeyService } from './api-keys.ts';
import { ACCESS_ERRORS } from './errors.ts';
import { ACCESS_EVENTS } from './events.ts';
import { accessHooks } from './hooks.ts';
import { ACCESS_IDS } from './ids.ts';
import { createKeyCache, type KeyCache } from './key-cache.ts';
import { keyRoutes } from './key-routes.ts';
import { createLoginThrottle } from './login-throttle.ts';
import { orgRoutes } from './org-routes.ts';
import { ACCESS_PERMISSIONS, PLANNED_PERMISSIONS } from './permissions.ts';
import { accountRoutes } from './routes.ts';
import { type AccessService, createAccessService } from './service.ts';
import { listOrgsOfUser } from './store.ts';

export { type ApiKey, type ApiKeyService, MAX_ROLL_GRACE_SECONDS } from './api-keys.ts';
export { type Allowlist, allowlistOf, parseAllowlist } from './domain/cidr.ts';
export {
  apiKeyScopes,
  holdsAll,
  isAdminPermission,
  isKnownPermission,
  isRole,
  ROLES,
  type Role,
  rolePermissions,
  sessionPermissions,
} from './domain/permissions.ts';
export { generateApiKey, parseApiKey, randomBase62 } from './domain/tokens.ts';
export {
  clearedSessionCookie,
  cookieSettings,
  ORG_HEADER,
  SESSION_COOKIE,
  sessionCookie,
} from './hooks.ts';
export { KEY_CACHE_TTL_MS, KEY_REVOCATION_BOUND_MS } from './key-cache.ts';
export { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './passwords.ts';
export { presentSession, presentUser, sessionOf, unwrap } from './present.ts';
export {
  type AccessService,
  type Actor,
  normalizeEmail,
  type Org,
  type RequestOrigin,
  type Result,
  requiresSecondFactor,
  type Session,
  type SessionGuard,
  type SessionIdentity,
  type User,
} from './service.ts';
export * as accessStore from './store.ts';
// For identity's wallet linking: the same SIWE signature check (EOA offline, ERC-1271/6492 on chain).
export { type SignatureCheck, verifySiweSignature } from './wallet/domain/signature.ts';

export interface AccessModule extends KeelModule {
  readonly service: AccessService;
  readonly apiKeys: ApiKeyService;
  readonly rateLimits: RateLimitService;
  readonly keyCache: KeyCache;
}

/**
 * Users, sessions, orgs, roles, API keys and rate limits. Its hooks authenticate, rate-limit
 * and authorize every route of every module, so app.ts registers it first.
 */
/** A user's security event is recorded in at most this many of their orgs. */
export const MAX_AUDITED_ORGS_PER_EVENT = 100;

export function createAccessModule(
  runtime: Runtime,
  deps: { events: EventsService; mailer: Mailer; audit?: AuditService },
): AccessModule {
  const { config, database, kv, clock, log } = runtime;
  const namespace = deploymentNamespace(config);
  const cache = createKeyCache({ db: database.db, kv, clock, log, namespace });
  const apiKeys = createApiKeyService({
    database,
    clock,
    newId: runtime.newId,
    events: deps.events,
    cache,
  });
  const service = createAccessService({
    database,
    clock,
    newId: runtime.newId,
    log,
    events: deps.events,
    throttle: createLoginThrottle({ kv, clock, log, namespace }),
    mailer: deps.mailer,
    publicUrl: config.http.publicUrl,
    onOrgChanged: (orgId) => cache.invalidate({ orgId }),
    onSecurityEvent: deps.audit
      ? async (event) => {
          const orgs = await listOrgsOfUser(database.db, event.userId, { limit: MAX_AUDITED_ORGS_PER_EVENT });
          for (const org of orgs) {
            await deps.audit!.record(undefined, {
              orgId: org.id,
              actor: { kind: 'user', id: event.userId },
              action: event.action,
              target: { userId: event.userId },
              outcome: event.outcome,
              ip: event.ip,
              userAgent: event.userAgent,
            });
          }
        }
      : undefined,
  });
  const rateLimits = createRateLimitService({
    config,
    kv,
    clock,
    log,
    metrics: runtime.metrics,
    database,
    events: deps.events,
  });
  return {
    name: 'access',
    // Rate limits are built here, so their event is listed here too.
    vocabulary: {
      errors: ACCESS_ERRORS,
      idPrefixes: ACCESS_IDS,
      permissions: { ...ACCESS_PERMISSIONS, ...PLANNED_PERMISSIONS },
      events: [...ACCESS_EVENTS, ...RATE_LIMIT_EVENTS],
    },
    service,
    apiKeys,
    rateLimits,
    keyCache: cache,
    hooks: async (app) => {
      await cache.start();
      await accessHooks({ config, namespace, service, apiKeys, rateLimits })(app);
    },
    routes: async (app) => {
      await accountRoutes({ config, service })(app);
      await orgRoutes({ service })(app);
      await keyRoutes({ apiKeys })(app);
    },
    close: async () => {
      await cache.close();
      await rateLimits.close();
    },
  };
}
