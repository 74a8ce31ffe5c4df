import type { ColumnType, Insertable, Selectable } from 'kysely';
import type { Db, Tx } from '../../../infra/db/database.ts';

export interface WalletNoncesTable {
  nonce: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
}

export type WalletKind = 'eoa' | 'contract';

export interface UserWalletsTable {
  id: string;
  user_id: string;
  account_id: string;
  chain_id: ColumnType<number, number, never>;
  address: string;
  kind: WalletKind;
  created_at: ColumnType<Date, Date | undefined, never>;
  last_used_at: Date;
}

declare module '../../../infra/db/tables.ts' {
  interface Tables {
    wallet_nonces: WalletNoncesTable;
    user_wallets: UserWalletsTable;
  }
}

export type UserWalletRow = Selectable<UserWalletsTable>;
type Executor = Db | Tx;

/** Rows deleted per statement by the pruning job. */
export const NONCE_PRUNE_BATCH_SIZE = 5_000;

export async function insertNonce(db: Executor, nonce: string, now: Date, expiresAt: Date): Promise<void> {
  await db.insertInto('wallet_nonces').values({ nonce, created_at: now, expires_at: expiresAt }).execute();
}

/** Deletes the nonce and says whether it was live: a nonce is consumed once, even concurrently. */
export async function takeNonce(db: Executor, nonce: string, now: Date): Promise<boolean> {
  const row = await db
    .deleteFrom('wallet_nonces')
    .where('nonce', '=', nonce)
    .returning('expires_at')
    .executeTakeFirst();
  return row !== undefined && row.expires_at > now;
}

export async function pruneNonces(db: Executor, now: Date): Promise<number> {
  const result = await db
    .deleteFrom('wallet_nonces')
    .where(
      'nonce',
      'in',
      db
        .selectFrom('wallet_nonces')
        .select('nonce')
        .where('expires_at', '<=', now)
        .limit(NONCE_PRUNE_BATCH_SIZE),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

const normalize = (row: UserWalletRow): UserWalletRow => ({ ...row, chain_id: Number(row.chain_id) });

/** The wallet that signed: an EOA by address on any chain, a contract by its CAIP-10 id. */
export async function findWallet(
  db: Executor,
  kind: WalletKind,
  address: string,
  accountId: string,
): Promise<UserWalletRow | undefined> {
  const query = db.selectFrom('user_wallets').selectAll();
  const row = await (kind === 'eoa'
    ? query.where('kind', '=', 'eoa').where('address', '=', address)
    : query.where('account_id', '=', accountId)
  ).executeTakeFirst();
  return row && normalize(row);
}

/** Inserts the wallet; undefined when the account (or, for an EOA, the address) is linked already. */
export async function insertWallet(
  db: Executor,
  row: Insertable<UserWalletsTable>,
): Promise<UserWalletRow | undefined> {
  const inserted = await db
    .insertInto('user_wallets')
    .values(row)
    .onConflict((conflict) => conflict.doNothing())
    .returningAll()
    .executeTakeFirst();
  return inserted && normalize(inserted);
}

export async function touchWallet(db: Executor, id: string, now: Date): Promise<void> {
  await db.updateTable('user_wallets').set({ last_used_at: now }).where('id', '=', id).execute();
}

export async function listWallets(db: Executor, userId: string): Promise<UserWalletRow[]> {
  const rows = await db
    .selectFrom('user_wallets')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('id')
    .execute();
  return rows.map(normalize);
}

/** SSO identities of the user (kept in the access platform's user_identities). */
export async function countIdentities(db: Executor, userId: string): Promise<number> {
  const row = await db
    .selectFrom('user_identities')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function deleteWallet(db: Executor, userId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom('user_wallets')
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}
