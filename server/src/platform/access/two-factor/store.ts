import type { ColumnType, Selectable } from 'kysely';
import type { Db, Tx } from '../../../infra/db/database.ts';

type Created = ColumnType<Date, Date | undefined, never>;

export interface TotpCredentialsTable {
  user_id: string;
  secret_sealed: string;
  confirmed_at: Date | null;
  last_used_step: ColumnType<number | null, number | null, number | null>;
  /** Restarted when a new enrolment replaces an unconfirmed one. */
  created_at: ColumnType<Date, Date | undefined, Date>;
}

export interface RecoveryCodesTable {
  user_id: string;
  code_hash: Buffer;
  used_at: Date | null;
  created_at: Created;
}

export interface OrgTwoFactorPoliciesTable {
  org_id: string;
  require_for_admins: boolean;
  updated_by: string | null;
  updated_at: Date;
}

declare module '../../../infra/db/tables.ts' {
  interface Tables {
    totp_credentials: TotpCredentialsTable;
    recovery_codes: RecoveryCodesTable;
    org_two_factor_policies: OrgTwoFactorPoliciesTable;
  }
}

export type TotpCredentialRow = Selectable<TotpCredentialsTable>;
type Executor = Db | Tx;

export async function findTotpCredential(
  db: Executor,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<TotpCredentialRow | undefined> {
  let query = db.selectFrom('totp_credentials').selectAll().where('user_id', '=', userId);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  // bigint arrives from pg as a string; steps fit a double for millions of years.
  return row && { ...row, last_used_step: row.last_used_step === null ? null : Number(row.last_used_step) };
}

/** Starts (or restarts) an enrolment: a new unconfirmed secret replaces any earlier one. */
export async function upsertPendingTotp(
  db: Executor,
  userId: string,
  secretSealed: string,
  now: Date,
): Promise<void> {
  await db
    .insertInto('totp_credentials')
    .values({ user_id: userId, secret_sealed: secretSealed, created_at: now })
    .onConflict((conflict) =>
      conflict.column('user_id').doUpdateSet({
        secret_sealed: secretSealed,
        confirmed_at: null,
        last_used_step: null,
        created_at: now,
      }),
    )
    .execute();
}

/**
 * Records `step` as used, only if it is newer than the last one: of two concurrent requests
 * with the same code, exactly one succeeds.
 */
export async function useTotpStep(
  db: Executor,
  userId: string,
  step: number,
  confirmAt?: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('totp_credentials')
    .set({ last_used_step: step, ...(confirmAt ? { confirmed_at: confirmAt } : {}) })
    .where('user_id', '=', userId)
    .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function deleteTotp(db: Executor, userId: string): Promise<void> {
  await db.deleteFrom('totp_credentials').where('user_id', '=', userId).execute();
  await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
}

export async function replaceRecoveryCodes(
  db: Executor,
  userId: string,
  hashes: readonly Buffer[],
  now: Date,
): Promise<void> {
  await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
  await db
    .insertInto('recovery_codes')
    .values(hashes.map((code_hash) => ({ user_id: userId, code_hash, created_at: now })))
    .execute();
}

/** Marks an unused code used; false when it is unknown or was used already. */
export async function useRecoveryCode(
  db: Executor,
  userId: string,
  hash: Buffer,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('recovery_codes')
    .set({ used_at: now })
    .where('user_id', '=', userId)
    .where('code_hash', '=', hash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function countUnusedRecoveryCodes(db: Executor, userId: string): Promise<number> {
  const row = await db
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function findTwoFactorPolicy(db: Executor, orgId: string) {
  return db.selectFrom('org_two_factor_policies').selectAll().where('org_id', '=', orgId).executeTakeFirst();
}

export async function upsertTwoFactorPolicy(
  db: Executor,
  row: { org_id: string; require_for_admins: boolean; updated_by: string | null; updated_at: Date },
) {
  return db
    .insertInto('org_two_factor_policies')
    .values(row)
    .onConflict((conflict) =>
      conflict.column('org_id').doUpdateSet({
        require_for_admins: row.require_for_admins,
        updated_by: row.updated_by,
        updated_at: row.updated_at,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}
