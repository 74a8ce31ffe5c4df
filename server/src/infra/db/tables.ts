import type { ColumnType } from 'kysely';

/**
 * The typed schema of every table Keel owns. Each module adds its own tables by augmenting this
 * interface from its `store.ts`:
 *
 *   declare module '../../infra/db/tables.ts' { interface Tables { ledger_accounts: LedgerAccountRow } }
 *
 * so no shared file lists every module's tables.
 */
export interface Tables {
  keel_migrations: {
    module: string;
    version: string;
    name: string;
    checksum: string;
    applied_at: ColumnType<Date, never, never>;
  };
  idempotency_keys: {
    org_id: string;
    key: string;
    method: string;
    route: string;
    request_hash: string;
    status: 'in_progress' | 'completed';
    response_status: number | null;
    response_headers: ColumnType<Record<string, string> | null, string | null, string | null>;
    response_body: string | null;
    created_at: ColumnType<Date, Date | undefined, never>;
    expires_at: Date;
  };
}
