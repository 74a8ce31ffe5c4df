import type { JobDefinition } from '../../infra/jobs/runner.ts';
import type { AuditService } from './service.ts';

export const AUDIT_CHECKPOINT_JOB = 'audit.checkpoint';
export const AUDIT_PRUNE_JOB = 'audit.prune-expired';
/** How often each org's chain head is signed, when it moved: the most history a checkpoint leaves unsigned. */
export const AUDIT_CHECKPOINT_CRON = '*/10 * * * *';
export const AUDIT_PRUNE_CRON = '41 3 * * *';

export function auditJobs(
  service: AuditService,
  deps: { onBrokenChain: (orgId: string) => void },
): JobDefinition[] {
  return [
    {
      name: AUDIT_CHECKPOINT_JOB,
      cron: AUDIT_CHECKPOINT_CRON,
      handler: async (_payload, context) => {
        const { created, broken } = await service.checkpointAll();
        if (created > 0) context.log.info({ created }, 'signed audit checkpoints');
        // A broken chain is not retried: running again cannot repair it. It is logged (by the
        // service, with the verification) and counted for alerting, and never signed.
        for (const orgId of broken) deps.onBrokenChain(orgId);
      },
    },
    {
      name: AUDIT_PRUNE_JOB,
      cron: AUDIT_PRUNE_CRON,
      handler: async (_payload, context) => {
        const deleted = await service.pruneExpired();
        if (deleted > 0) context.log.info({ deleted }, 'pruned expired audit entries');
      },
    },
  ];
}
