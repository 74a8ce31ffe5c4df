import type { JobDefinition } from '../../infra/jobs/runner.ts';
import type { MeteringService } from './service.ts';

export const USAGE_PRUNE_JOB = 'usage.prune-expired';

/** Retention: raw events and aggregates past their windows go, in batches (idempotent). */
export function meteringJobs(service: MeteringService): JobDefinition[] {
  return [
    {
      name: USAGE_PRUNE_JOB,
      cron: '41 * * * *',
      handler: async (_payload, context) => {
        const deleted = await service.prune();
        if (Object.values(deleted).some((count) => count > 0))
          context.log.info({ deleted }, 'pruned expired usage');
      },
    },
  ];
}
