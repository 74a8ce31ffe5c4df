import { createSsrfGuard } from '../../../infra/http/ssrf.ts';
import type { KeelModule } from '../../../infra/module.ts';
import type { Runtime } from '../../../infra/runtime.ts';
import { cookieSettings } from '../hooks.ts';
import type { AccessService } from '../service.ts';
import { SSO_ERRORS } from './errors.ts';
import { SSO_IDS } from './ids.ts';
import { createOidcClient } from './oidc.ts';
import { ssoRoutes } from './routes.ts';
import { createSsoService, type SsoService } from './service.ts';

export { createSsoService, type SsoService } from './service.ts';

export const SSO_ATTEMPT_PRUNE_JOB = 'access.sso.prune-attempts';

/** Single sign-on with OpenID Connect, one identity provider per org. */
export function createSsoModule(
  runtime: Runtime,
  deps: { access: AccessService },
): KeelModule & { service: SsoService } {
  const { access } = deps;
  const service = createSsoService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    secretBox: runtime.secretBox,
    oidc: createOidcClient({
      clock: runtime.clock,
      // The same operator allowlist as webhooks: an org admin picks the issuer, so it is tenant input.
      ssrf: createSsrfGuard({ allow: runtime.config.webhooks.ssrfAllowlist }),
    }),
    log: runtime.log.child({ component: 'sso' }),
    publicUrl: runtime.config.http.publicUrl,
    access,
  });
  return {
    name: 'access-sso',
    vocabulary: { errors: SSO_ERRORS, idPrefixes: SSO_IDS },
    service,
    routes: ssoRoutes({
      service,
      cookies: cookieSettings(runtime.config),
      publicUrl: runtime.config.http.publicUrl,
    }),
    jobs: [
      {
        name: SSO_ATTEMPT_PRUNE_JOB,
        cron: '*/15 * * * *',
        handler: async (_payload, context) => {
          const pruned = await service.pruneAttempts();
          if (pruned > 0) context.log.debug({ pruned }, 'expired SSO sign-in attempts deleted');
        },
      },
    ],
  };
}
