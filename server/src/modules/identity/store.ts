import type { ColumnType, RawBuilder, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Db, Tx } from '../../infra/db/database.ts';
import type { Outcome, ProviderName } from './contracts.ts';
import type { Policy } from './domain/policy.ts';
import type { EvidenceOutcome } from './providers/types.ts';

type Json<T> = ColumnType<T, string, string>;

export interface SubjectTable {
  org_id: string;
  id: string;
  external_id: string | null;
  metadata: Json<Record<string, unknown>>;
  created_at: Date;
  updated_at: Date;
}

export type SubjectRow = Selectable<SubjectTable>;

export interface ProviderConfigTable {
  org_id: string;
  provider: ProviderName;
  enabled: boolean;
  base_url: string | null;
  api_key_sealed: string | null;
  settings: Json<Record<string, unknown>>;
  timeout_ms: number;
  retries: number;
  cache_ttl_seconds: number;
  created_at: Date;
  updated_at: Date;
}
export type ProviderConfigRow = Selectable<ProviderConfigTable>;

export interface PolicyTable {
  org_id: string;
  policy: Json<Policy>;
  updated_at: Date;
}

export interface VerificationTable {
  org_id: string;
  id: string;
  subject_id: string;
  account: string | null;
  outcome: Outcome;
  reasons: string[];
  total_weight: number;
  duplicate_of: string | null;
  policy: Json<Policy>;
  request: Json<StoredRequest>;
  supersedes: string | null;
  expires_at: Date | null;
  expired_at: Date | null;
  created_at: Date;
}
export type VerificationRow = Selectable<VerificationTable>;

export interface EvidenceTable {
  org_id: string;
  verification_id: string;
  provider: ProviderName;
  outcome: EvidenceOutcome;
  accepted: boolean;
  score: number | null;
  identifier: string | null;
  chain_id: number | null;
  error_code: string | null;
  detail: Json<Record<string, unknown>>;
  cached: boolean;
  latency_ms: number;
  observed_at: Date;
  provider_expires_at: Date | null;
  created_at: Date;
}
export type EvidenceRow = Selectable<EvidenceTable>;

export interface IdentifierTable {
  org_id: string;
  provider: ProviderName;
  identifier: string;
  subject_id: string;
  first_verification_id: string;
  chain_ids: number[];
  created_at: Date;
  updated_at: Date;
}

/** What a re-verification runs again: never a World ID proof, which is single-use. */
export interface StoredRequest {
  readonly subjectId?: string;
  readonly account?: string;
  readonly brightIdAppUserId?: string;
  readonly providers?: readonly ProviderName[];
}

declare module '../../infra/db/tables.ts' {
  interface Tables {
    identity_subjects: SubjectTable;
    identity_provider_configs: ProviderConfigTable;
    identity_policies: PolicyTable;
    identity_verifications: VerificationTable;
    identity_evidence: EvidenceTable;
    identity_identifiers: IdentifierTable;
  }
}

type Executor = Db | Tx;

/** Inserts a subject; `undefined` when its external id is taken in the org. */
export async function insertSubject(
  executor: Executor,
  row: Omit<SubjectRow, 'metadata'> & { metadata: Record<string, unknown> },
) {
  return executor
    .insertInto('identity_subjects')
    .values({ ...row, metadata: JSON.stringify(row.metadata) })
    .onConflict((conflict) =>
      conflict.columns(['org_id', 'external_id']).where('external_id', 'is not', null).doNothing(),
    )
    .returningAll()
    .executeTakeFirst();
}

export function findSubject(executor: Executor, orgId: string, id: string) {
  return executor
    .selectFrom('identity_subjects')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export function findSubjectByExternalId(executor: Executor, orgId: string, externalId: string) {
  return executor
    .selectFrom('identity_subjects')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('external_id', '=', externalId)
    .executeTakeFirst();
}

export function listSubjects(db: Db, orgId: string, options: { cursor?: string; limit: number }) {
  let query = db.selectFrom('identity_subjects').selectAll().where('org_id', '=', orgId);
  if (options.cursor) query = query.where('id', '<', options.cursor);
  return query
    .orderBy('id', 'desc')
    .limit(options.limit + 1)
    .execute();
}

// ── Provider configuration and policy ─────────────────────────────────────────────────────────

export function listProviderConfigs(db: Db, orgId: string) {
  return db
    .selectFrom('identity_provider_configs')
    .selectAll()
    .where('org_id', '=', orgId)
    .orderBy('provider')
    .execute();
}

export function upsertProviderConfig(
  db: Db,
  row: Omit<ProviderConfigRow, 'settings' | 'created_at'> & {
    settings: Record<string, unknown>;
    created_at: Date;
  },
) {
  const values = { ...row, settings: JSON.stringify(row.settings) };
  return db
    .insertInto('identity_provider_configs')
    .values(values)
    .onConflict((conflict) =>
      conflict.columns(['org_id', 'provider']).doUpdateSet({
        enabled: values.enabled,
        base_url: values.base_url,
        api_key_sealed: values.api_key_sealed,
        settings: values.settings,
        timeout_ms: values.timeout_ms,
        retries: values.retries,
        cache_ttl_seconds: values.cache_ttl_seconds,
        updated_at: values.updated_at,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteProviderConfig(db: Db, orgId: string, provider: ProviderName): Promise<boolean> {
  const result = await db
    .deleteFrom('identity_provider_configs')
    .where('org_id', '=', orgId)
    .where('provider', '=', provider)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function findPolicy(db: Db, orgId: string) {
  return db.selectFrom('identity_policies').selectAll().where('org_id', '=', orgId).executeTakeFirst();
}

export function upsertPolicy(db: Db, orgId: string, policy: Policy, now: Date) {
  return db
    .insertInto('identity_policies')
    .values({ org_id: orgId, policy: JSON.stringify(policy), updated_at: now })
    .onConflict((conflict) =>
      conflict.column('org_id').doUpdateSet({ policy: JSON.stringify(policy), updated_at: now }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

// ── Verifications, evidence and identifiers ───────────────────────────────────────────────────

export type NewVerification = Omit<VerificationRow, 'policy' | 'request'> & {
  policy: Policy;
  request: StoredRequest;
};
export type NewEvidence = Omit<EvidenceRow, 'detail'> & { detail: Readonly<Record<string, unknown>> };

/** Writes a verification and its evidence in one statement (a data-modifying CTE). */
export async function insertVerification(
  tx: Tx,
  verification: NewVerification,
  evidence: readonly NewEvidence[],
) {
  const row = {
    ...verification,
    policy: JSON.stringify(verification.policy),
    request: JSON.stringify(verification.request),
  };
  if (evidence.length === 0) {
    await tx.insertInto('identity_verifications').values(row).execute();
    return;
  }
  await tx
    .with('verification', (db) => db.insertInto('identity_verifications').values(row))
    .insertInto('identity_evidence')
    .values(evidence.map((item) => ({ ...item, detail: JSON.stringify(item.detail) })))
    .execute();
}

/**
 * Whom identifiers are bound to: a known subject; or the subject an account's verification
 * belongs to (see `subjectForAccountQuery`), created as `orCreate` says when there is none.
 */
export type BindingSubject =
  | { readonly id: string }
  | {
      readonly account: string;
      readonly orCreate?: { readonly id: string; readonly metadata: Record<string, unknown> };
    };

/**
 * Binds each identifier to the subject unless it is bound already, and adds the chains it was
 * seen on; returns the subject and the subject each identifier is bound to. Given an account
 * instead of a subject, it first looks the subject up, in the same statement; when there is
 * none it creates the `orCreate` subject, or else binds nothing and returns no subject. One
 * statement, so two verifications presenting the same identifier at once bind it to exactly one
 * of them; rows go in a fixed order so two such statements lock in the same order.
 */
export async function bindIdentifiers(
  tx: Tx,
  context: { orgId: string; subject: BindingSubject; verificationId: string; now: Date },
  identifiers: readonly { provider: ProviderName; identifier: string; chainIds: readonly number[] }[],
): Promise<{ subjectId: string | undefined; bound: Map<ProviderName, string> }> {
  const { orgId, subject } = context;
  if ('id' in subject && identifiers.length === 0) return { subjectId: subject.id, bound: new Map() };
  const sorted = [...identifiers].sort(
    (a, b) => a.provider.localeCompare(b.provider) || a.identifier.localeCompare(b.identifier),
  );
  let known: RawBuilder<unknown>;
  if ('id' in subject) known = sql`known as (select ${subject.id}::text as subject_id)`;
  else if (!subject.orCreate)
    known = sql`known as (${subjectForAccountQuery(orgId, subject.account, identifiers)})`;
  else
    known = sql`found as (${subjectForAccountQuery(orgId, subject.account, identifiers)}),
    created as (
      insert into identity_subjects (org_id, id, external_id, metadata, created_at, updated_at)
      select ${orgId}, ${subject.orCreate.id}, null, ${JSON.stringify(subject.orCreate.metadata)}::jsonb,
        ${context.now}, ${context.now}
      where not exists (select 1 from found)
      returning id
    ),
    known as (select subject_id from found union all select id from created)`;
  const { rows } = await sql<{
    subject: string | null;
    provider: ProviderName | null;
    bound_to: string | null;
  }>`
    with ${known},
    bound as (
      insert into identity_identifiers
        (org_id, provider, identifier, subject_id, first_verification_id, chain_ids, created_at, updated_at)
      select ${orgId}, t.provider, t.identifier, known.subject_id, ${context.verificationId},
        coalesce(string_to_array(nullif(t.chains, ''), ',')::integer[], '{}'), ${context.now}, ${context.now}
      from known, unnest(${sorted.map((i) => i.provider)}::text[], ${sorted.map((i) => i.identifier)}::text[],
        ${sorted.map((i) => i.chainIds.join(','))}::text[]) with ordinality as t(provider, identifier, chains, n)
      order by t.n
      on conflict (org_id, provider, identifier) do update set
        chain_ids = array(select distinct c from unnest(identity_identifiers.chain_ids || excluded.chain_ids) c order by c),
        updated_at = excluded.updated_at
      returning provider, subject_id
    )
    select (select subject_id from known) as subject, bound.provider, bound.subject_id as bound_to
    from (select 1) as one left join bound on true`.execute(tx);
  return {
    subjectId: rows[0]?.subject ?? undefined,
    bound: new Map(rows.filter((row) => row.provider !== null).map((row) => [row.provider!, row.bound_to!])),
  };
}

/**
 * The subject an account-only verification belongs to: the subject one of its identifiers is
 * bound to (earliest binding first), else the subject of the account's latest verification.
 */
function subjectForAccountQuery(
  orgId: string,
  account: string,
  identifiers: readonly { provider: ProviderName; identifier: string }[],
) {
  return sql<{ subject_id: string }>`
    (select subject_id, 0 as rank, created_at from identity_identifiers
      where org_id = ${orgId}
        and (provider, identifier) in (
          select * from unnest(${identifiers.map((i) => i.provider)}::text[], ${identifiers.map((i) => i.identifier)}::text[]))
      order by created_at limit 1)
    union all
    (select subject_id, 1 as rank, created_at from identity_verifications
      where org_id = ${orgId} and account = ${account}
      order by created_at desc limit 1)
    order by rank limit 1`;
}

export function findVerification(executor: Executor, orgId: string, id: string) {
  return executor
    .selectFrom('identity_verifications')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export function latestVerification(executor: Executor, orgId: string, subjectId: string) {
  return executor
    .selectFrom('identity_verifications')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('subject_id', '=', subjectId)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export function evidenceOf(executor: Executor, orgId: string, verificationIds: readonly string[]) {
  if (verificationIds.length === 0) return Promise.resolve([]);
  return executor
    .selectFrom('identity_evidence')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('verification_id', 'in', verificationIds)
    .orderBy('provider')
    .execute();
}

export function listVerifications(
  db: Db,
  orgId: string,
  options: { cursor?: string; limit: number; subjectId?: string; outcome?: Outcome },
) {
  let query = db.selectFrom('identity_verifications').selectAll().where('org_id', '=', orgId);
  if (options.subjectId) query = query.where('subject_id', '=', options.subjectId);
  if (options.outcome) query = query.where('outcome', '=', options.outcome);
  if (options.cursor) query = query.where('id', '<', options.cursor);
  return query
    .orderBy('id', 'desc')
    .limit(options.limit + 1)
    .execute();
}

/** Verifications, across orgs, whose evidence stopped counting and that nobody handled yet. */
export function dueVerifications(db: Db, now: Date, limit: number) {
  return db
    .selectFrom('identity_verifications as v')
    .selectAll('v')
    .where('v.expired_at', 'is', null)
    .where('v.expires_at', 'is not', null)
    .where('v.expires_at', '<=', now)
    .orderBy('v.expires_at')
    .limit(limit)
    .execute();
}

/** Marks a verdict expired; false when another worker already did (so it must not act again). */
export async function markExpired(tx: Tx, orgId: string, id: string, now: Date): Promise<boolean> {
  const result = await tx
    .updateTable('identity_verifications')
    .set({ expired_at: now })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('expired_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function hasNewerVerification(executor: Executor, orgId: string, subjectId: string, id: string) {
  const row = await executor
    .selectFrom('identity_verifications')
    .select('id')
    .where('org_id', '=', orgId)
    .where('subject_id', '=', subjectId)
    .where('id', '>', id)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

// ── Analytics ─────────────────────────────────────────────────────────────────────────────────

export async function countByOutcome(db: Db, orgId: string, from: Date, to: Date) {
  const { rows } = await sql<{ day: string; outcome: Outcome; duplicates: string; count: string }>`
    select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, outcome,
      count(*) filter (where duplicate_of is not null) as duplicates, count(*) as count
    from identity_verifications
    where org_id = ${orgId} and created_at >= ${from} and created_at < ${to}
    group by 1, 2 order by 1, 2`.execute(db);
  return rows;
}

export async function countByProvider(db: Db, orgId: string, from: Date, to: Date) {
  const { rows } = await sql<{
    day: string;
    provider: ProviderName;
    outcome: EvidenceOutcome;
    accepted: string;
    count: string;
  }>`
    select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, provider, outcome,
      count(*) filter (where accepted) as accepted, count(*) as count
    from identity_evidence
    where org_id = ${orgId} and created_at >= ${from} and created_at < ${to}
    group by 1, 2, 3 order by 1, 2, 3`.execute(db);
  return rows;
}
