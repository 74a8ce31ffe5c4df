import { type ColumnType, type Insertable, type Selectable, sql } from 'kysely';
import type { Db, Tx } from '../../infra/db/database.ts';
import type { Role } from './domain/permissions.ts';
import type { ApiKeyEnvironment } from './domain/tokens.ts';

type Created = ColumnType<Date, Date | undefined, never>;
type Updated = ColumnType<Date, Date | undefined, Date>;

export interface UsersTable {
  id: string;
  /** Null for a user who signed up with a wallet. */
  email: string | null;
  email_verified_at: Date | null;
  name: string | null;
  password_hash: string | null;
  totp_enabled_at: Date | null;
  created_at: Created;
  updated_at: Updated;
}

export interface UserIdentitiesTable {
  provider: string;
  subject: string;
  user_id: string;
  created_at: Created;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  token_hash: Buffer;
  method: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Created;
  last_seen_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

export interface MfaChallengesTable {
  token_hash: Buffer;
  user_id: string;
  method: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Created;
  expires_at: Date;
}

export interface OrgsTable {
  id: string;
  name: string;
  rate_limit_per_minute: number | null;
  admin_ip_allowlist: string[];
  created_at: Created;
  updated_at: Updated;
}

export interface MembershipsTable {
  org_id: string;
  user_id: string;
  role: Role;
  created_at: Created;
  updated_at: Updated;
}

export interface InvitationsTable {
  org_id: string;
  id: string;
  email: string;
  role: Role;
  token_hash: Buffer;
  invited_by: string | null;
  created_at: Created;
  expires_at: Date;
  accepted_at: Date | null;
  accepted_by: string | null;
  revoked_at: Date | null;
}

export interface ApiKeysTable {
  org_id: string;
  id: string;
  name: string;
  environment: ApiKeyEnvironment;
  scopes: string[];
  expires_at: Date | null;
  rate_limit_per_minute: number | null;
  ip_allowlist: string[];
  metadata: ColumnType<Record<string, string>, string, string>;
  last_used_at: Date | null;
  created_by: string | null;
  created_at: Created;
  updated_at: Updated;
  revoked_at: Date | null;
}

export interface ApiKeySecretsTable {
  secret_hash: Buffer;
  org_id: string;
  key_id: string;
  hint: string;
  created_at: Created;
  expires_at: Date | null;
}

declare module '../../infra/db/tables.ts' {
  interface Tables {
    users: UsersTable;
    user_identities: UserIdentitiesTable;
    sessions: SessionsTable;
    mfa_challenges: MfaChallengesTable;
    orgs: OrgsTable;
    memberships: MembershipsTable;
    invitations: InvitationsTable;
    api_keys: ApiKeysTable;
    api_key_secrets: ApiKeySecretsTable;
  }
}

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type OrgRow = Selectable<OrgsTable>;
export type MembershipRow = Selectable<MembershipsTable>;
export type InvitationRow = Selectable<InvitationsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type ApiKeySecretRow = Selectable<ApiKeySecretsTable>;

type Executor = Db | Tx;

/** A page is read as `limit + 1` rows by id, so the caller knows whether another page exists. */
export interface PageQuery {
  readonly limit: number;
  /** Return rows with ids after this one. */
  readonly after?: string | undefined;
}

// ---- users ------------------------------------------------------------------------------

export async function insertUser(db: Executor, row: Insertable<UsersTable>): Promise<UserRow | undefined> {
  return db
    .insertInto('users')
    .values(row)
    .onConflict((conflict) => conflict.column('email').doNothing())
    .returningAll()
    .executeTakeFirst();
}

export function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findUserByEmail(db: Executor, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

export async function updateUser(
  db: Executor,
  id: string,
  changes: Partial<Pick<UsersTable, 'name' | 'password_hash' | 'email_verified_at' | 'totp_enabled_at'>>,
  now: Date,
): Promise<UserRow | undefined> {
  return db
    .updateTable('users')
    .set({ ...changes, updated_at: now })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function insertIdentity(db: Executor, row: Insertable<UserIdentitiesTable>): Promise<boolean> {
  const inserted = await db
    .insertInto('user_identities')
    .values(row)
    .onConflict((conflict) => conflict.columns(['provider', 'subject']).doNothing())
    .returning('user_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function findUserByIdentity(
  db: Executor,
  provider: string,
  subject: string,
): Promise<UserRow | undefined> {
  return db
    .selectFrom('user_identities')
    .innerJoin('users', 'users.id', 'user_identities.user_id')
    .selectAll('users')
    .where('user_identities.provider', '=', provider)
    .where('user_identities.subject', '=', subject)
    .executeTakeFirst();
}

// ---- sessions ---------------------------------------------------------------------------

export async function insertSession(db: Executor, row: Insertable<SessionsTable>): Promise<SessionRow> {
  return db.insertInto('sessions').values(row).returningAll().executeTakeFirstOrThrow();
}

/** A live session with its user, and the user's role in `orgId` when asked for one. */
export async function findLiveSession(db: Executor, tokenHash: Buffer, now: Date) {
  return db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select([
      'sessions.id as session_id',
      'sessions.created_at',
      'sessions.last_seen_at',
      'sessions.expires_at',
      'sessions.method',
      'users.id as user_id',
      'users.email',
      'users.totp_enabled_at',
    ])
    .where('sessions.token_hash', '=', tokenHash)
    .where('sessions.revoked_at', 'is', null)
    .where('sessions.expires_at', '>', now)
    .executeTakeFirst();
}

export async function touchSession(db: Executor, id: string, now: Date, expiresAt: Date): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ last_seen_at: now, expires_at: expiresAt })
    .where('id', '=', id)
    .execute();
}

export function listLiveSessions(
  db: Executor,
  userId: string,
  now: Date,
  page: PageQuery,
): Promise<SessionRow[]> {
  let query = db
    .selectFrom('sessions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now);
  if (page.after) query = query.where('id', '<', page.after);
  return query
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .execute();
}

/** Revokes one of the user's sessions; false when the user has no such live session. */
export async function revokeSession(db: Executor, userId: string, id: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('sessions')
    .set({ revoked_at: now })
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function revokeSessionsOfUser(
  db: Executor,
  userId: string,
  now: Date,
  exceptId?: string,
): Promise<number> {
  let query = db
    .updateTable('sessions')
    .set({ revoked_at: now })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null);
  if (exceptId) query = query.where('id', '!=', exceptId);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function insertMfaChallenge(db: Executor, row: Insertable<MfaChallengesTable>): Promise<void> {
  await db.insertInto('mfa_challenges').values(row).execute();
}

/** Deletes and returns the challenge: it can be consumed once, even by concurrent requests. */
export function takeMfaChallenge(db: Executor, tokenHash: Buffer, now: Date) {
  return db
    .deleteFrom('mfa_challenges')
    .where('token_hash', '=', tokenHash)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
}

// ---- orgs and members --------------------------------------------------------------------

export async function insertOrg(db: Executor, row: Insertable<OrgsTable>): Promise<OrgRow> {
  return db.insertInto('orgs').values(row).returningAll().executeTakeFirstOrThrow();
}

export function findOrg(db: Executor, id: string): Promise<OrgRow | undefined> {
  return db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
}

export function updateOrg(
  db: Executor,
  id: string,
  changes: Partial<Pick<OrgsTable, 'name' | 'rate_limit_per_minute' | 'admin_ip_allowlist'>>,
  now: Date,
): Promise<OrgRow | undefined> {
  return db
    .updateTable('orgs')
    .set({ ...changes, updated_at: now })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function insertMembership(db: Executor, row: Insertable<MembershipsTable>): Promise<boolean> {
  const inserted = await db
    .insertInto('memberships')
    .values(row)
    .onConflict((conflict) => conflict.columns(['org_id', 'user_id']).doNothing())
    .returning('user_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

export function findMembership(
  db: Executor,
  orgId: string,
  userId: string,
): Promise<MembershipRow | undefined> {
  return db
    .selectFrom('memberships')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/**
 * The user's membership in `orgId`, or (no `orgId`) their oldest one, which is the org a session
 * acts for when the request names none; with what authorization needs of the org.
 */
export function findMembershipWithOrg(db: Executor, userId: string, orgId: string | undefined) {
  let query = db
    .selectFrom('memberships')
    .innerJoin('orgs', 'orgs.id', 'memberships.org_id')
    .select([
      'memberships.org_id',
      'memberships.role',
      'orgs.rate_limit_per_minute',
      'orgs.admin_ip_allowlist',
    ])
    .where('memberships.user_id', '=', userId);
  if (orgId !== undefined) query = query.where('memberships.org_id', '=', orgId);
  return query.orderBy('memberships.created_at').orderBy('memberships.org_id').limit(1).executeTakeFirst();
}

/** The user's oldest membership: the org a session acts for when the request names none. */
export function findFirstMembership(db: Executor, userId: string): Promise<MembershipRow | undefined> {
  return db
    .selectFrom('memberships')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .orderBy('org_id')
    .limit(1)
    .executeTakeFirst();
}

/** Every org the user belongs to, with their role, by org id. */
export function listOrgsOfUser(db: Executor, userId: string, page: PageQuery) {
  let query = db
    .selectFrom('memberships')
    .innerJoin('orgs', 'orgs.id', 'memberships.org_id')
    .selectAll('orgs')
    .select('memberships.role')
    .where('memberships.user_id', '=', userId);
  if (page.after) query = query.where('orgs.id', '>', page.after);
  return query
    .orderBy('orgs.id')
    .limit(page.limit + 1)
    .execute();
}

const members = (db: Executor, orgId: string) =>
  db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select([
      'memberships.user_id',
      'memberships.role',
      'memberships.created_at',
      'users.email',
      'users.name',
      'users.totp_enabled_at',
    ])
    .where('memberships.org_id', '=', orgId);

export interface MemberRow {
  user_id: string;
  role: Role;
  created_at: Date;
  email: string | null;
  name: string | null;
  totp_enabled_at: Date | null;
}

export function findMember(db: Executor, orgId: string, userId: string): Promise<MemberRow | undefined> {
  return members(db, orgId).where('memberships.user_id', '=', userId).executeTakeFirst();
}

export function listMembers(db: Executor, orgId: string, page: PageQuery): Promise<MemberRow[]> {
  let query = members(db, orgId);
  if (page.after) query = query.where('memberships.user_id', '>', page.after);
  return query
    .orderBy('memberships.user_id')
    .limit(page.limit + 1)
    .execute();
}

export async function updateMembershipRole(
  db: Executor,
  orgId: string,
  userId: string,
  role: Role,
  now: Date,
): Promise<MembershipRow | undefined> {
  return db
    .updateTable('memberships')
    .set({ role, updated_at: now })
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteMembership(db: Executor, orgId: string, userId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('memberships')
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Locks the org's owner rows, so two concurrent demotions cannot leave it without an owner. */
export async function lockOwners(tx: Tx, orgId: string): Promise<string[]> {
  const rows = await tx
    .selectFrom('memberships')
    .select('user_id')
    .where('org_id', '=', orgId)
    .where('role', '=', 'owner')
    .forUpdate()
    .execute();
  return rows.map((row) => row.user_id);
}

// ---- invitations -------------------------------------------------------------------------

export async function insertInvitation(
  db: Executor,
  row: Insertable<InvitationsTable>,
): Promise<InvitationRow> {
  return db.insertInto('invitations').values(row).returningAll().executeTakeFirstOrThrow();
}

export function listPendingInvitations(db: Executor, orgId: string, now: Date, page: PageQuery) {
  let query = db
    .selectFrom('invitations')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now);
  if (page.after) query = query.where('id', '<', page.after);
  return query
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .execute();
}

export async function revokeInvitation(db: Executor, orgId: string, id: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('invitations')
    .set({ revoked_at: now })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** The invitation behind a token, locked for the accepting transaction. */
export function findInvitationByTokenForUpdate(tx: Tx, tokenHash: Buffer) {
  return tx
    .selectFrom('invitations')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .forUpdate()
    .executeTakeFirst();
}

export async function markInvitationAccepted(
  tx: Tx,
  orgId: string,
  id: string,
  userId: string,
  now: Date,
): Promise<void> {
  await tx
    .updateTable('invitations')
    .set({ accepted_at: now, accepted_by: userId })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .execute();
}

// ---- API keys ------------------------------------------------------------------------------

export async function insertApiKey(
  db: Executor,
  key: Omit<Insertable<ApiKeysTable>, 'metadata'> & { metadata: Record<string, string> },
  secret: Insertable<ApiKeySecretsTable>,
): Promise<ApiKeyRow> {
  const row = await db
    .insertInto('api_keys')
    .values({ ...key, metadata: JSON.stringify(key.metadata) })
    .returningAll()
    .executeTakeFirstOrThrow();
  await db.insertInto('api_key_secrets').values(secret).execute();
  return row;
}

export function findApiKey(db: Executor, orgId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .selectFrom('api_keys')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export function listApiKeys(
  db: Executor,
  orgId: string,
  page: PageQuery & { includeRevoked: boolean },
): Promise<ApiKeyRow[]> {
  let query = db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId);
  if (!page.includeRevoked) query = query.where('revoked_at', 'is', null);
  if (page.after) query = query.where('id', '<', page.after);
  return query
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .execute();
}

/** The secrets of these keys that still work, newest first. */
export function listKeySecrets(db: Executor, orgId: string, keyIds: readonly string[], now: Date) {
  if (keyIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('api_key_secrets')
    .select(['key_id', 'hint', 'created_at', 'expires_at'])
    .where('org_id', '=', orgId)
    .where('key_id', 'in', keyIds)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('created_at', 'desc')
    .execute();
}

export async function updateApiKey(
  db: Executor,
  orgId: string,
  id: string,
  changes: Partial<
    Pick<ApiKeysTable, 'name' | 'scopes' | 'expires_at' | 'rate_limit_per_minute' | 'ip_allowlist'>
  > & { metadata?: Record<string, string> },
  now: Date,
): Promise<ApiKeyRow | undefined> {
  const { metadata, ...rest } = changes;
  return db
    .updateTable('api_keys')
    .set({
      ...rest,
      ...(metadata === undefined ? {} : { metadata: JSON.stringify(metadata) }),
      updated_at: now,
    })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
}

export async function revokeApiKey(db: Executor, orgId: string, id: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: now, updated_at: now })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Ends the grace of every working secret of the key at `graceEndsAt` (or earlier, if an
 * earlier roll already set a sooner end) and adds the new secret.
 */
export async function rollApiKeySecret(
  tx: Tx,
  secret: Insertable<ApiKeySecretsTable>,
  graceEndsAt: Date,
  now: Date,
): Promise<void> {
  await tx
    .updateTable('api_key_secrets')
    .set({ expires_at: graceEndsAt })
    .where('org_id', '=', secret.org_id)
    .where('key_id', '=', secret.key_id)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', graceEndsAt)]))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .execute();
  await tx.insertInto('api_key_secrets').values(secret).execute();
  await tx
    .updateTable('api_keys')
    .set({ updated_at: now })
    .where('org_id', '=', secret.org_id)
    .where('id', '=', secret.key_id)
    .execute();
}

/** What verification needs to know about a key, read by the hash of a presented secret. */
export function findKeyBySecretHash(db: Executor, secretHash: Buffer) {
  return db
    .selectFrom('api_key_secrets')
    .innerJoin('api_keys', (join) =>
      join
        .onRef('api_keys.org_id', '=', 'api_key_secrets.org_id')
        .onRef('api_keys.id', '=', 'api_key_secrets.key_id'),
    )
    .innerJoin('orgs', 'orgs.id', 'api_keys.org_id')
    .select([
      'api_keys.id',
      'api_keys.org_id',
      'api_keys.environment',
      'api_keys.scopes',
      'api_keys.expires_at',
      'api_keys.rate_limit_per_minute',
      'api_keys.ip_allowlist',
      'api_keys.revoked_at',
      'api_key_secrets.expires_at as secret_expires_at',
      'orgs.rate_limit_per_minute as org_rate_limit_per_minute',
      'orgs.admin_ip_allowlist as org_admin_ip_allowlist',
    ])
    .where('api_key_secrets.secret_hash', '=', secretHash)
    .executeTakeFirst();
}

/** Records when keys were last used, in one statement; never moves a time backwards. */
export async function recordKeysLastUsed(
  db: Executor,
  uses: readonly { orgId: string; keyId: string; at: Date }[],
): Promise<void> {
  if (uses.length === 0) return;
  await sql`
    update api_keys k set last_used_at = u.at
    from (select * from unnest(${uses.map((u) => u.orgId)}::text[], ${uses.map((u) => u.keyId)}::text[],
      ${uses.map((u) => u.at.toISOString())}::timestamptz[]) as u(org_id, id, at)) u
    where k.org_id = u.org_id and k.id = u.id and (k.last_used_at is null or k.last_used_at < u.at)`.execute(
    db,
  );
}
