import type { ColumnType, Insertable, Selectable } from 'kysely';
import type { Db, Tx } from '../../../infra/db/database.ts';
import type { Role } from '../domain/permissions.ts';

export interface SsoConnectionsTable {
  org_id: string;
  id: string;
  issuer: string;
  client_id: string;
  client_secret_sealed: string;
  email_domains: string[];
  default_role: Exclude<Role, 'owner'>;
  created_by: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: Date;
}

export interface SsoLoginAttemptsTable {
  state_hash: Buffer;
  org_id: string;
  code_verifier: string;
  nonce: string;
  return_to: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
}

declare module '../../../infra/db/tables.ts' {
  interface Tables {
    sso_connections: SsoConnectionsTable;
    sso_login_attempts: SsoLoginAttemptsTable;
  }
}

export type SsoConnectionRow = Selectable<SsoConnectionsTable>;
export type SsoLoginAttemptRow = Selectable<SsoLoginAttemptsTable>;
type Executor = Db | Tx;

/** Rows deleted per statement by the pruning job. */
export const ATTEMPT_PRUNE_BATCH_SIZE = 5_000;

export function findConnection(db: Executor, orgId: string): Promise<SsoConnectionRow | undefined> {
  return db.selectFrom('sso_connections').selectAll().where('org_id', '=', orgId).executeTakeFirst();
}

/** Creates the org's connection or replaces its settings (keeping its id and creation time). */
export function upsertConnection(
  db: Executor,
  row: Insertable<SsoConnectionsTable>,
): Promise<SsoConnectionRow> {
  return db
    .insertInto('sso_connections')
    .values(row)
    .onConflict((conflict) =>
      conflict.column('org_id').doUpdateSet({
        issuer: row.issuer,
        client_id: row.client_id,
        client_secret_sealed: row.client_secret_sealed,
        email_domains: row.email_domains,
        default_role: row.default_role,
        updated_at: row.updated_at,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteConnection(db: Executor, orgId: string): Promise<boolean> {
  const result = await db.deleteFrom('sso_connections').where('org_id', '=', orgId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function insertAttempt(db: Executor, row: Insertable<SsoLoginAttemptsTable>): Promise<void> {
  await db.insertInto('sso_login_attempts').values(row).execute();
}

/** Deletes and returns the attempt if it is live: a state is answered once, even concurrently. */
export async function takeAttempt(
  db: Executor,
  stateHash: Buffer,
  now: Date,
): Promise<SsoLoginAttemptRow | undefined> {
  const row = await db
    .deleteFrom('sso_login_attempts')
    .where('state_hash', '=', stateHash)
    .returningAll()
    .executeTakeFirst();
  return row && row.expires_at > now ? row : undefined;
}

export async function pruneAttempts(db: Executor, now: Date): Promise<number> {
  const result = await db
    .deleteFrom('sso_login_attempts')
    .where(
      'state_hash',
      'in',
      db
        .selectFrom('sso_login_attempts')
        .select('state_hash')
        .where('expires_at', '<=', now)
        .limit(ATTEMPT_PRUNE_BATCH_SIZE),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
