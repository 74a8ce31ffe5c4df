import type { KeelModule } from '../../../infra/module.ts';
import type { Runtime } from '../../../infra/runtime.ts';
import { deploymentNamespace } from '../../rate-limit/index.ts';
import type { AccessService } from '../service.ts';
import { EMAIL_FLOW_ERRORS } from './errors.ts';
import { emailFlowRoutes } from './routes.ts';
import { createEmailFlowsService, type EmailFlowsService } from './service.ts';

export { createEmailFlowsService, type EmailFlowsService } from './service.ts';

export const EMAIL_TOKEN_PRUNE_JOB = 'access.email.prune-tokens';

/** Email verification and password reset, mailed through runtime.mailer. */
export function createEmailFlowsModule(
  runtime: Runtime,
  deps: { access: AccessService },
): KeelModule & { service: EmailFlowsService } {
  const { access } = deps;
  const service = createEmailFlowsService({
    database: runtime.database,
    clock: runtime.clock,
    kv: runtime.kv,
    mailer: runtime.mailer,
    namespace: deploymentNamespace(runtime.config),
    log: runtime.log.child({ component: 'email-flows' }),
    publicUrl: runtime.config.http.publicUrl,
    access,
  });
  return {
    name: 'access-email-flows',
    vocabulary: { errors: EMAIL_FLOW_ERRORS },
    service,
    routes: emailFlowRoutes({ service }),
    jobs: [
      {
        name: EMAIL_TOKEN_PRUNE_JOB,
        cron: '17 * * * *',
        handler: async (_payload, context) => {
          const pruned = await service.pruneTokens();
          if (pruned > 0) context.log.debug({ pruned }, 'expired email tokens deleted');
        },
      },
    ],
    close: () => service.drain(),
  };
}
