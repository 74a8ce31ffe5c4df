import type { Permission } from '../../../infra/http/auth.ts';
import type { KeelModule } from '../../../infra/module.ts';
import type { Runtime } from '../../../infra/runtime.ts';
import { deploymentNamespace } from '../../rate-limit/index.ts';
import { isSessionOnly } from '../domain/permissions.ts';
import { cookieSettings } from '../hooks.ts';
import type { AccessService } from '../service.ts';
import { TWO_FACTOR_ERRORS } from './errors.ts';
import { twoFactorPolicyHook, twoFactorRoutes } from './routes.ts';
import { createTwoFactorService, type TwoFactorService } from './service.ts';

export { createTwoFactorService, type TwoFactorService } from './service.ts';

/** TOTP 2FA: enrolment, the second step of sign-in, and the org policy for owners and admins. */
export function createTwoFactorModule(
  runtime: Runtime,
  deps: { access: AccessService },
): KeelModule & { service: TwoFactorService } {
  const { access } = deps;
  const service = createTwoFactorService({
    database: runtime.database,
    clock: runtime.clock,
    kv: runtime.kv,
    secretBox: runtime.secretBox,
    namespace: deploymentNamespace(runtime.config),
    access,
  });
  return {
    name: 'access-two-factor',
    vocabulary: { errors: TWO_FACTOR_ERRORS },
    service,
    hooks: twoFactorPolicyHook({
      service,
      isSessionOnly: (permission) => isSessionOnly(permission as Permission),
    }),
    routes: twoFactorRoutes({ service, access, cookies: cookieSettings(runtime.config) }),
  };
}
