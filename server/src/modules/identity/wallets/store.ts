import type { Db, Tx } from '../../../infra/db/database.ts';
import type { Namespace, WalletKind } from './domain/caip10.ts';

export interface WalletChallengeRow {
  org_id: string;
  id: string;
  subject_id: string;
  namespace: Namespace;
  account_id: string;
  message: string;
  nonce: string;
  issued_at: Date;
  expires_at: Date;
  used_at: Date | null;
}

export interface WalletRow {
  org_id: string;
  id: string;
  subject_id: string;
  account_id: string;
  namespace: Namespace;
  reference: string;
  address: string;
  kind: WalletKind;
  controller: string | null;
  public_key: string | null;
  challenge_id: string;
  linked_at: Date;
  unlinked_at: Date | null;
}

declare module '../../../infra/db/tables.ts' {
  interface Tables {
    identity_wallet_challenges: WalletChallengeRow;
    identity_wallets: WalletRow;
  }
}

type Executor = Db | Tx;

export async function insertChallenge(db: Db, row: WalletChallengeRow): Promise<void> {
  await db.insertInto('identity_wallet_challenges').values(row).execute();
}

export function findChallenge(db: Db, orgId: string, id: string) {
  return db
    .selectFrom('identity_wallet_challenges')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Marks the challenge used if it still is usable; false when another request took it first. */
export async function takeChallenge(tx: Tx, orgId: string, id: string, now: Date): Promise<boolean> {
  const taken = await tx
    .updateTable('identity_wallet_challenges')
    .set({ used_at: now })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return taken.numUpdatedRows === 1n;
}

export async function pruneChallenges(db: Db, before: Date): Promise<number> {
  const deleted = await db
    .deleteFrom('identity_wallet_challenges')
    .where('expires_at', '<', before)
    .executeTakeFirst();
  return Number(deleted.numDeletedRows);
}

/**
 * The linked wallet that holds `accountId`, or the key behind it (`controller`), in the org:
 * what a new link of this account would conflict with.
 */
export function findLinkedHolder(
  executor: Executor,
  orgId: string,
  accountId: string,
  namespace: Namespace,
  controller: string | null,
) {
  return executor
    .selectFrom('identity_wallets')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('unlinked_at', 'is', null)
    .where((eb) =>
      controller === null
        ? eb('account_id', '=', accountId)
        : eb.or([
            eb('account_id', '=', accountId),
            eb.and([eb('namespace', '=', namespace), eb('controller', '=', controller)]),
          ]),
    )
    .orderBy('linked_at')
    .executeTakeFirst();
}

/** Inserts a link; undefined when a linked wallet of the org already holds the account or its key. */
export async function insertWallet(tx: Tx, row: WalletRow): Promise<WalletRow | undefined> {
  // The conflict target is left open: either partial unique index (account id, or controller)
  // turns the insert into a no-op, and the caller reports whichever link holds the wallet.
  return tx
    .insertInto('identity_wallets')
    .values(row)
    .onConflict((conflict) => conflict.doNothing())
    .returningAll()
    .executeTakeFirst();
}

export function countLinked(executor: Executor, orgId: string, subjectId: string) {
  return executor
    .selectFrom('identity_wallets')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('org_id', '=', orgId)
    .where('subject_id', '=', subjectId)
    .where('unlinked_at', 'is', null)
    .executeTakeFirstOrThrow()
    .then((row) => Number(row.count));
}

export function listLinked(
  db: Db,
  orgId: string,
  subjectId: string,
  options: { cursor?: string; limit: number },
) {
  let query = db
    .selectFrom('identity_wallets')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('subject_id', '=', subjectId)
    .where('unlinked_at', 'is', null);
  if (options.cursor) query = query.where('id', '>', options.cursor);
  return query
    .orderBy('id')
    .limit(options.limit + 1)
    .execute();
}

/** Marks the subject's link of `accountId` unlinked; the row it was, or undefined. */
export function unlinkWallet(tx: Tx, orgId: string, subjectId: string, accountId: string, now: Date) {
  return tx
    .updateTable('identity_wallets')
    .set({ unlinked_at: now })
    .where('org_id', '=', orgId)
    .where('subject_id', '=', subjectId)
    .where('account_id', '=', accountId)
    .where('unlinked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
}
