import type { ColumnType, Insertable, Selectable } from 'kysely';
import type { Db, Tx } from '../../../infra/db/database.ts';

export type EmailTokenPurpose = 'verify_email' | 'reset_password';

export interface EmailTokensTable {
  token_hash: Buffer;
  user_id: string;
  purpose: EmailTokenPurpose;
  email: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
}

declare module '../../../infra/db/tables.ts' {
  interface Tables {
    email_tokens: EmailTokensTable;
  }
}

export type EmailTokenRow = Selectable<EmailTokensTable>;
type Executor = Db | Tx;

/** Rows deleted per statement by the pruning job. */
export const EMAIL_TOKEN_PRUNE_BATCH_SIZE = 5_000;

/** Stores a new token and drops the user's earlier ones of the same purpose: only the last link works. */
export async function replaceToken(db: Tx, row: Insertable<EmailTokensTable>): Promise<void> {
  await db
    .deleteFrom('email_tokens')
    .where('user_id', '=', row.user_id)
    .where('purpose', '=', row.purpose)
    .execute();
  await db.insertInto('email_tokens').values(row).execute();
}

/** Deletes and returns a live token: it works once, even for concurrent requests. */
export async function takeToken(
  db: Executor,
  tokenHash: Buffer,
  purpose: EmailTokenPurpose,
  now: Date,
): Promise<EmailTokenRow | undefined> {
  const row = await db
    .deleteFrom('email_tokens')
    .where('token_hash', '=', tokenHash)
    .where('purpose', '=', purpose)
    .returningAll()
    .executeTakeFirst();
  return row && row.expires_at > now ? row : undefined;
}

export async function deleteTokensOfUser(
  db: Executor,
  userId: string,
  purpose: EmailTokenPurpose,
): Promise<void> {
  await db.deleteFrom('email_tokens').where('user_id', '=', userId).where('purpose', '=', purpose).execute();
}

export async function pruneTokens(db: Executor, now: Date): Promise<number> {
  const result = await db
    .deleteFrom('email_tokens')
    .where(
      'token_hash',
      'in',
      db
        .selectFrom('email_tokens')
        .select('token_hash')
        .where('expires_at', '<=', now)
        .limit(EMAIL_TOKEN_PRUNE_BATCH_SIZE),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
