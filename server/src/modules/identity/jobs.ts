import type { JobDefinition } from '../../infra/jobs/runner.ts';
import type { VerificationsService } from './verifications.ts';

export const REVERIFY_EXPIRED_JOB = 'identity.reverify-expired';

/**
 * Re-verifies verdicts whose evidence grew too old or lapsed at the provider, every minute.
 * Idempotent: a verdict is marked expired in the same transaction as its re-verification, and
 * a second worker finding it marked does nothing.
 */
export function identityJobs(verifications: Pick<VerificationsService, 'expireDue'>): JobDefinition[] {
  return [
    {
      name: REVERIFY_EXPIRED_JOB,
      cron: '* * * * *',
      handler: async (_payload, context) => {
        const reverified = await verifications.expireDue();
        if (reverified > 0) context.log.info({ reverified }, 're-verified expired identity verdicts');
      },
    },
  ];
}
