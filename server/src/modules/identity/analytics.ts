import type { Db } from '../../infra/db/database.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { Outcome } from './contracts.ts';
import { MAX_ANALYTICS_DAYS } from './schemas.ts';
import { countByOutcome, countByProvider } from './store.ts';

const DAY_MS = 86_400_000;

/** Verification counts for the dashboard: by outcome, by provider and outcome, per UTC day. */
export function createAnalyticsService(deps: { db: Db }) {
  return {
    /** `from` and `to` are UTC days (YYYY-MM-DD), both included. */
    async counts(orgId: string, from: string, to: string) {
      const start = new Date(`${from}T00:00:00Z`);
      const end = new Date(new Date(`${to}T00:00:00Z`).getTime() + DAY_MS);
      if ((end.getTime() - start.getTime()) / DAY_MS > MAX_ANALYTICS_DAYS)
        throw new KeelError('ANALYTICS_RANGE_TOO_LARGE', `At most ${MAX_ANALYTICS_DAYS} days per query`);
      const [outcomes, providers] = await Promise.all([
        countByOutcome(deps.db, orgId, start, end),
        countByProvider(deps.db, orgId, start, end),
      ]);
      const totals: Record<Outcome | 'duplicates', number> = {
        verified: 0,
        not_verified: 0,
        needs_review: 0,
        duplicates: 0,
      };
      for (const row of outcomes) {
        totals[row.outcome] += Number(row.count);
        totals.duplicates += Number(row.duplicates);
      }
      return {
        from,
        to,
        totals,
        byOutcome: outcomes.map((row) => ({
          day: row.day,
          outcome: row.outcome,
          count: Number(row.count),
          duplicates: Number(row.duplicates),
        })),
        byProvider: providers.map((row) => ({
          day: row.day,
          provider: row.provider,
          outcome: row.outcome,
          count: Number(row.count),
          accepted: Number(row.accepted),
        })),
      };
    },
  };
}

export type AnalyticsService = ReturnType<typeof createAnalyticsService>;
