import type { Db } from '../../infra/db/database.ts';
import type { JobDefinition } from '../../infra/jobs/runner.ts';
import type { LedgerService } from './service.ts';
import { ledgerOrgs } from './store.ts';

export const EXPIRE_HOLDS_JOB = 'ledger.expire-holds';
export const SNAPSHOT_BALANCES_JOB = 'ledger.snapshot-balances';
export const RECONCILE_JOB = 'ledger.reconcile';
/** Orgs read per query by the reconciliation job. */
export const RECONCILE_ORG_PAGE = 100;

/**
 * The ledger's background work. Each handler is idempotent: releasing a hold writes a transfer
 * whose id derives from the hold, snapshots are keyed by their instant, and reconciliation only
 * reads.
 */
export function ledgerJobs(ledger: LedgerService, db: Db): JobDefinition[] {
  return [
    {
      // Cron's finest grain is a minute: a hold is released within a minute of its timeout. It can
      // no longer be posted from its timeout on, whether or not it was released yet.
      name: EXPIRE_HOLDS_JOB,
      cron: '* * * * *',
      handler: async (_payload, context) => {
        const released = await ledger.expireHolds();
        if (released > 0) context.log.info({ released }, 'released expired ledger holds');
      },
    },
    {
      name: SNAPSHOT_BALANCES_JOB,
      cron: '*/10 * * * *',
      handler: async (_payload, context) => {
        const written = await ledger.writeSnapshots();
        if (written > 0) context.log.info({ written }, 'wrote ledger balance snapshots');
      },
    },
    {
      name: RECONCILE_JOB,
      cron: '23 * * * *',
      handler: async (_payload, context) => {
        let after: string | undefined;
        for (;;) {
          const orgs = await ledgerOrgs(db, after, RECONCILE_ORG_PAGE);
          for (const orgId of orgs) {
            const report = await ledger.reconcile(orgId);
            // A broken invariant is an incident, not a retryable failure: log it loudly and go on.
            if (!report.ok)
              context.log.error({ orgId, report }, 'ledger reconciliation found a broken invariant');
          }
          if (orgs.length < RECONCILE_ORG_PAGE) return;
          after = orgs.at(-1);
        }
      },
    },
  ];
}
