import { type RawBuilder, sql } from 'kysely';
import type { Db, Tx } from '../../infra/db/database.ts';
import type {
  ActorKind,
  ChainedEntry,
  ChainHead,
  EntryPayload,
  JsonValue,
  Outcome,
  PersonalData,
  StoredEntry,
} from './domain/chain.ts';

export interface AuditEntriesTable {
  org_id: string;
  seq: string;
  payload_version: number;
  occurred_at: Date;
  actor_kind: ActorKind;
  actor_id: string | null;
  action: string;
  target: Record<string, string> | null;
  outcome: Outcome;
  status: number | null;
  request_id: string | null;
  details: Record<string, JsonValue> | null;
  personal_data_digest: string | null;
  prev_hash: string;
  hash: string;
}

declare module '../../infra/db/tables.ts' {
  interface Tables {
    audit_heads: { org_id: string; seq: string; hash: string };
    audit_entries: AuditEntriesTable;
    audit_personal_data: {
      org_id: string;
      seq: string;
      salt: string | null;
      ip: string | null;
      user_agent: string | null;
      actor_email: string | null;
      erased_at: Date | null;
    };
    audit_signing_keys: {
      org_id: string;
      id: string;
      algorithm: string;
      public_key_pem: string;
      sealed_private_key: string;
      created_at: Date;
    };
    audit_checkpoints: {
      org_id: string;
      seq: string;
      id: string;
      hash: string;
      created_at: Date;
      key_id: string;
      signature: string;
    };
  }
}

type Executor = Db | Tx;

/** An entry row joined with its personal data (null columns when it has none). */
interface EntryRow extends AuditEntriesTable {
  pd_present: boolean;
  pd_salt: string | null;
  pd_ip: string | null;
  pd_user_agent: string | null;
  pd_actor_email: string | null;
  pd_erased_at: Date | null;
}

const ENTRY_COLUMNS = sql`
  e.org_id, e.seq::text as seq, e.payload_version, e.occurred_at, e.actor_kind, e.actor_id, e.action,
  e.target, e.outcome, e.status, e.request_id, e.details, e.personal_data_digest, e.prev_hash, e.hash,
  p.seq is not null as pd_present, p.salt as pd_salt, p.ip as pd_ip, p.user_agent as pd_user_agent,
  p.actor_email as pd_actor_email, p.erased_at as pd_erased_at`;

const FROM_ENTRIES = sql`audit_entries e left join audit_personal_data p on p.org_id = e.org_id and p.seq = e.seq`;

/** Rebuilds the hashed payload from the columns, so a change to any of them is detected. */
function toStoredEntry(row: EntryRow): StoredEntry {
  const payload: EntryPayload = {
    v: row.payload_version as EntryPayload['v'],
    orgId: row.org_id,
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    occurredAt: row.occurred_at.toISOString(),
    actor: { kind: row.actor_kind, id: row.actor_id },
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    status: row.status,
    requestId: row.request_id,
    details: row.details,
    personalDataDigest: row.personal_data_digest,
  };
  return {
    payload,
    hash: row.hash,
    ...(row.pd_present
      ? {
          personalData: {
            salt: row.pd_salt,
            ip: row.pd_ip,
            userAgent: row.pd_user_agent,
            actorEmail: row.pd_actor_email,
            erased: row.pd_erased_at !== null,
          },
        }
      : {}),
  };
}

// Appending ------------------------------------------------------------------------------------

/**
 * Locks the org's chain head for the rest of `tx` and returns it, creating it at seq 0 first if
 * the org has none. Every append goes through this lock, so appends of one org are serialised
 * across replicas and seqs have no gaps.
 */
export async function lockHead(tx: Tx, orgId: string, genesisHash: string): Promise<ChainHead> {
  const read = () =>
    sql<{ seq: string; hash: string }>`
      select seq::text as seq, hash from audit_heads where org_id = ${orgId} for update`.execute(tx);
  let { rows } = await read();
  if (rows.length === 0) {
    await sql`insert into audit_heads (org_id, seq, hash) values (${orgId}, 0, ${genesisHash})
      on conflict (org_id) do nothing`.execute(tx);
    ({ rows } = await read());
  }
  const row = rows[0]!;
  return { seq: Number(row.seq), hash: row.hash };
}

export interface PersonalDataRow extends PersonalData {
  readonly seq: number;
  readonly salt: string;
}

/** Writes the entries and their personal data and moves the head, in one statement. */
export async function appendEntries(
  tx: Tx,
  orgId: string,
  entries: readonly ChainedEntry[],
  personal: readonly PersonalDataRow[],
): Promise<void> {
  const payloads = entries.map((entry) => entry.payload);
  const last = entries.at(-1)!;
  await sql`
    with inserted as (
      insert into audit_entries (
        org_id, seq, payload_version, occurred_at, actor_kind, actor_id, action, target, outcome,
        status, request_id, details, personal_data_digest, prev_hash, hash
      )
      select ${orgId}, * from unnest(
        ${payloads.map((p) => p.seq)}::bigint[],
        ${payloads.map((p) => p.v)}::smallint[],
        ${payloads.map((p) => p.occurredAt)}::timestamptz[],
        ${payloads.map((p) => p.actor.kind)}::text[],
        ${payloads.map((p) => p.actor.id)}::text[],
        ${payloads.map((p) => p.action)}::text[],
        ${payloads.map((p) => (p.target ? JSON.stringify(p.target) : null))}::jsonb[],
        ${payloads.map((p) => p.outcome)}::text[],
        ${payloads.map((p) => p.status)}::int[],
        ${payloads.map((p) => p.requestId)}::text[],
        ${payloads.map((p) => (p.details ? JSON.stringify(p.details) : null))}::jsonb[],
        ${payloads.map((p) => p.personalDataDigest)}::text[],
        ${payloads.map((p) => p.prevHash)}::text[],
        ${entries.map((e) => e.hash)}::text[]
      )
      returning seq
    ), personal as (
      insert into audit_personal_data (org_id, seq, salt, ip, user_agent, actor_email)
      select ${orgId}, * from unnest(
        ${personal.map((p) => p.seq)}::bigint[],
        ${personal.map((p) => p.salt)}::text[],
        ${personal.map((p) => p.ip)}::text[],
        ${personal.map((p) => p.userAgent)}::text[],
        ${personal.map((p) => p.actorEmail)}::text[]
      )
      -- The entries must exist before their personal data: the foreign key is checked at the end
      -- of the statement, when both CTEs have run.
      returning seq
    )
    update audit_heads set seq = ${last.payload.seq}, hash = ${last.hash}
    where org_id = ${orgId}`.execute(tx);
}

// Reading --------------------------------------------------------------------------------------

export interface EntryFilter {
  readonly actorId?: string;
  readonly actorKind?: ActorKind;
  readonly actions?: readonly string[];
  /** Matches an entry any of whose target values equals it. */
  readonly target?: string;
  readonly outcome?: Outcome;
  readonly since?: Date;
  readonly until?: Date;
  readonly fromSeq?: number;
  readonly toSeq?: number;
}

function filterSql(orgId: string, filter: EntryFilter): RawBuilder<unknown> {
  const parts = [sql`e.org_id = ${orgId}`];
  if (filter.actorId !== undefined) parts.push(sql`e.actor_id = ${filter.actorId}`);
  if (filter.actorKind !== undefined) parts.push(sql`e.actor_kind = ${filter.actorKind}`);
  if (filter.actions && filter.actions.length > 0) parts.push(sql`e.action = any(${filter.actions}::text[])`);
  if (filter.target !== undefined)
    parts.push(
      sql`jsonb_path_exists(e.target, '$.* ? (@ == $value)', jsonb_build_object('value', ${filter.target}::text))`,
    );
  if (filter.outcome !== undefined) parts.push(sql`e.outcome = ${filter.outcome}`);
  if (filter.since !== undefined) parts.push(sql`e.occurred_at >= ${filter.since}`);
  if (filter.until !== undefined) parts.push(sql`e.occurred_at < ${filter.until}`);
  if (filter.fromSeq !== undefined) parts.push(sql`e.seq >= ${filter.fromSeq}`);
  if (filter.toSeq !== undefined) parts.push(sql`e.seq <= ${filter.toSeq}`);
  return sql.join(parts, sql` and `);
}

/** A page of entries matching `filter`, by seq: descending before `beforeSeq`, or ascending after `afterSeq`. */
export async function readEntries(
  db: Executor,
  orgId: string,
  filter: EntryFilter,
  page: { limit: number } & ({ order: 'desc'; beforeSeq?: number } | { order: 'asc'; afterSeq?: number }),
): Promise<StoredEntry[]> {
  const position =
    page.order === 'desc'
      ? page.beforeSeq !== undefined
        ? sql`and e.seq < ${page.beforeSeq}`
        : sql``
      : page.afterSeq !== undefined
        ? sql`and e.seq > ${page.afterSeq}`
        : sql``;
  const { rows } = await sql<EntryRow>`
    select ${ENTRY_COLUMNS} from ${FROM_ENTRIES}
    where ${filterSql(orgId, filter)} ${position}
    order by e.seq ${page.order === 'desc' ? sql`desc` : sql`asc`}
    limit ${page.limit}`.execute(db);
  return rows.map(toStoredEntry);
}

export async function readHead(db: Executor, orgId: string): Promise<ChainHead | undefined> {
  const { rows } = await sql<{ seq: string; hash: string }>`
    select seq::text as seq, hash from audit_heads where org_id = ${orgId}`.execute(db);
  return rows[0] && { seq: Number(rows[0].seq), hash: rows[0].hash };
}

/** Orgs that have an audit chain, in id order, after `afterOrgId`. */
export async function listChainOrgs(
  db: Executor,
  options: { afterOrgId?: string; limit: number },
): Promise<string[]> {
  const { rows } = await sql<{ org_id: string }>`
    select org_id from audit_heads
    ${options.afterOrgId !== undefined ? sql`where org_id > ${options.afterOrgId}` : sql``}
    order by org_id limit ${options.limit}`.execute(db);
  return rows.map((row) => row.org_id);
}

// Personal data --------------------------------------------------------------------------------

/**
 * Overwrites the personal data of the org's entries whose actor is `actorId` or whose recorded
 * email is `email` (case-insensitive), salt included. Returns how many entries were erased.
 */
export async function erasePersonalData(
  db: Executor,
  orgId: string,
  who: { actorId?: string; email?: string },
  erasedAt: Date,
): Promise<number> {
  const matches = [];
  if (who.actorId !== undefined)
    matches.push(
      sql`p.seq in (select seq from audit_entries where org_id = ${orgId} and actor_id = ${who.actorId})`,
    );
  if (who.email !== undefined) matches.push(sql`lower(p.actor_email) = lower(${who.email})`);
  const result = await sql`
    update audit_personal_data p
    set salt = null, ip = null, user_agent = null, actor_email = null, erased_at = ${erasedAt}
    where p.org_id = ${orgId} and p.erased_at is null and (${sql.join(matches, sql` or `)})`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

// Signing keys and checkpoints -----------------------------------------------------------------

export interface SigningKeyRow {
  readonly org_id: string;
  readonly id: string;
  readonly algorithm: string;
  readonly public_key_pem: string;
  readonly sealed_private_key: string;
  readonly created_at: Date;
}

export async function findSigningKey(db: Executor, orgId: string): Promise<SigningKeyRow | undefined> {
  const { rows } = await sql<SigningKeyRow>`
    select org_id, id, algorithm, public_key_pem, sealed_private_key, created_at
    from audit_signing_keys where org_id = ${orgId}`.execute(db);
  return rows[0];
}

/** Stores the org's key unless another process stored one first; either way returns the org's key. */
export async function insertSigningKey(db: Executor, row: SigningKeyRow): Promise<SigningKeyRow> {
  await sql`
    insert into audit_signing_keys (org_id, id, algorithm, public_key_pem, sealed_private_key, created_at)
    values (${row.org_id}, ${row.id}, ${row.algorithm}, ${row.public_key_pem}, ${row.sealed_private_key}, ${row.created_at})
    on conflict (org_id) do nothing`.execute(db);
  return (await findSigningKey(db, row.org_id))!;
}

/** Every public key of an org, by id. */
export async function publicKeys(db: Executor, orgId: string): Promise<Map<string, string>> {
  const { rows } = await sql<{ id: string; public_key_pem: string }>`
    select id, public_key_pem from audit_signing_keys where org_id = ${orgId}`.execute(db);
  return new Map(rows.map((row) => [row.id, row.public_key_pem]));
}

export interface CheckpointRow {
  readonly org_id: string;
  readonly seq: number;
  readonly id: string;
  readonly hash: string;
  readonly created_at: Date;
  readonly key_id: string;
  readonly signature: string;
}

const CHECKPOINT_COLUMNS = sql`org_id, seq::text as seq, id, hash, created_at, key_id, signature`;
const toCheckpoint = (row: CheckpointRow & { seq: unknown }): CheckpointRow => ({
  ...row,
  seq: Number(row.seq),
});

/** Inserts the checkpoint unless one exists at that seq; returns the one stored. */
export async function insertCheckpoint(db: Executor, row: CheckpointRow): Promise<CheckpointRow> {
  await sql`
    insert into audit_checkpoints (org_id, seq, id, hash, created_at, key_id, signature)
    values (${row.org_id}, ${row.seq}, ${row.id}, ${row.hash}, ${row.created_at}, ${row.key_id}, ${row.signature})
    on conflict (org_id, seq) do nothing`.execute(db);
  const { rows } = await sql<CheckpointRow>`
    select ${CHECKPOINT_COLUMNS} from audit_checkpoints where org_id = ${row.org_id} and seq = ${row.seq}`.execute(
    db,
  );
  return toCheckpoint(rows[0]!);
}

/** Checkpoints newest first, before `beforeSeq`. */
export async function listCheckpoints(
  db: Executor,
  orgId: string,
  page: { limit: number; beforeSeq?: number },
): Promise<CheckpointRow[]> {
  const { rows } = await sql<CheckpointRow>`
    select ${CHECKPOINT_COLUMNS} from audit_checkpoints
    where org_id = ${orgId} ${page.beforeSeq !== undefined ? sql`and seq < ${page.beforeSeq}` : sql``}
    order by seq desc limit ${page.limit}`.execute(db);
  return rows.map(toCheckpoint);
}

/** Every checkpoint of an org at or after `fromSeq`, ascending. */
export async function checkpointsFrom(
  db: Executor,
  orgId: string,
  fromSeq: number,
): Promise<CheckpointRow[]> {
  const { rows } = await sql<CheckpointRow>`
    select ${CHECKPOINT_COLUMNS} from audit_checkpoints
    where org_id = ${orgId} and seq >= ${fromSeq} order by seq`.execute(db);
  return rows.map(toCheckpoint);
}

export async function findCheckpoint(
  db: Executor,
  orgId: string,
  which: { id: string } | 'latest',
): Promise<CheckpointRow | undefined> {
  const { rows } = await sql<CheckpointRow>`
    select ${CHECKPOINT_COLUMNS} from audit_checkpoints where org_id = ${orgId}
    ${which === 'latest' ? sql`order by seq desc limit 1` : sql`and id = ${which.id}`}`.execute(db);
  return rows[0] && toCheckpoint(rows[0]);
}

/** The newest checkpoint created before `before`: retention may prune below its seq. */
export async function latestCheckpointBefore(
  db: Executor,
  orgId: string,
  before: Date,
): Promise<CheckpointRow | undefined> {
  const { rows } = await sql<CheckpointRow>`
    select ${CHECKPOINT_COLUMNS} from audit_checkpoints
    where org_id = ${orgId} and created_at < ${before} order by seq desc limit 1`.execute(db);
  return rows[0] && toCheckpoint(rows[0]);
}

/** Orgs whose chain head is past their latest checkpoint, in id order, after `afterOrgId`. */
export async function orgsNeedingCheckpoint(
  db: Executor,
  options: { afterOrgId?: string; limit: number },
): Promise<string[]> {
  const { rows } = await sql<{ org_id: string }>`
    select h.org_id from audit_heads h
    where h.seq > coalesce((select max(c.seq) from audit_checkpoints c where c.org_id = h.org_id), 0)
      ${options.afterOrgId !== undefined ? sql`and h.org_id > ${options.afterOrgId}` : sql``}
    order by h.org_id limit ${options.limit}`.execute(db);
  return rows.map((row) => row.org_id);
}

/** Orgs with a checkpoint created before `before` and entries below it, after `afterOrgId`. */
export async function orgsWithPrunableEntries(
  db: Executor,
  before: Date,
  options: { afterOrgId?: string; limit: number },
): Promise<string[]> {
  const { rows } = await sql<{ org_id: string }>`
    select c.org_id from audit_checkpoints c
    where c.created_at < ${before}
      ${options.afterOrgId !== undefined ? sql`and c.org_id > ${options.afterOrgId}` : sql``}
    group by c.org_id
    having exists (select 1 from audit_entries e where e.org_id = c.org_id and e.seq < max(c.seq))
    order by c.org_id limit ${options.limit}`.execute(db);
  return rows.map((row) => row.org_id);
}

/**
 * Deletes up to `limit` of the org's oldest entries below `belowSeq`, under the session setting the
 * append-only trigger admits (which also refuses anything not below the latest checkpoint).
 */
export async function pruneEntriesBelow(
  tx: Tx,
  orgId: string,
  belowSeq: number,
  limit: number,
): Promise<number> {
  await sql`set local keel.audit_prune = 'on'`.execute(tx);
  const result = await sql`
    delete from audit_entries
    where org_id = ${orgId} and seq < ${belowSeq}
      and seq < (select min(seq) from audit_entries where org_id = ${orgId}) + ${limit}`.execute(tx);
  return Number(result.numAffectedRows ?? 0n);
}
