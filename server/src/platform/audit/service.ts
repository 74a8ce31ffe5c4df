import { randomBytes } from 'node:crypto';
import type { Clock } from '../../infra/clock.ts';
import type { Database, Tx } from '../../infra/db/database.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { SecretBox } from '../../infra/keystore/secret-box.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import {
  type AuditActor,
  appendToChain,
  type ChainHead,
  type ChainVerification,
  createChainVerifier,
  type EntryDraft,
  GENESIS_HASH,
  hasPersonalData,
  MAX_ACTION_LENGTH,
  MAX_ID_LENGTH,
  normalizeDetails,
  normalizeTarget,
  type Outcome,
  type PersonalData,
  personalDataDigest,
  type StoredEntry,
  storableText,
} from './domain/chain.ts';
import {
  type CheckpointStatement,
  checkpointStatement,
  describePublicKey,
  generateSigningKeyPair,
  SIGNATURE_ALGORITHM,
  signCheckpoint,
  verifyCheckpoint,
} from './domain/checkpoint.ts';
import type { ExportedEntry } from './domain/export-format.ts';
import * as store from './store.ts';

/** Audit entries are kept this long; older ones are pruned, down to a checkpoint only. */
export const AUDIT_RETENTION_MS = 365 * 24 * 60 * 60 * 1000;
/** Entries read per query when verifying or exporting. */
export const AUDIT_READ_BATCH_SIZE = 1_000;
/** Entries deleted per transaction by retention. */
export const AUDIT_PRUNE_BATCH_SIZE = 5_000;
/** Orgs read per query by the checkpoint and retention jobs. */
export const AUDIT_ORG_BATCH_SIZE = 500;
/** Longest stored IP, user agent and email. */
export const MAX_IP_LENGTH = 64;
export const MAX_USER_AGENT_LENGTH = 512;
export const MAX_EMAIL_LENGTH = 320;
const SALT_BYTES = 32;

/**
 * What a module records: who did what to what, and how it went. `ip`, `userAgent` and
 * `actorEmail` are personal data: they are stored outside the hash chain and can be erased.
 */
export interface AuditRecord {
  readonly orgId: string;
  readonly actor: { readonly kind: AuditActor['kind']; readonly id?: string | null | undefined };
  /** Dotted, past tense for events (`api_key.created`); `METHOD /v1/route/:pattern` for API calls. */
  readonly action: string;
  /** The ids acted on, by name: `{ keyId: 'key_…' }`. No personal data here: it is hashed. */
  readonly target?: Readonly<Record<string, string | number | null | undefined>> | undefined;
  readonly outcome: Outcome;
  /** Context that is not personal data (`{ from: 'developer', to: 'admin' }`). It is hashed. */
  readonly details?: Readonly<Record<string, unknown>> | undefined;
  /** The HTTP status, for API calls. */
  readonly status?: number | undefined;
  readonly requestId?: string | undefined;
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly actorEmail?: string | undefined;
}

export interface RecordedEntry {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditEntry {
  readonly seq: number;
  readonly occurredAt: Date;
  readonly actor: AuditActor;
  readonly action: string;
  readonly target: Readonly<Record<string, string>> | null;
  readonly outcome: Outcome;
  readonly status: number | null;
  readonly requestId: string | null;
  readonly details: Readonly<Record<string, unknown>> | null;
  readonly prevHash: string;
  readonly hash: string;
  /** Null when the entry had none or it was erased. */
  readonly personalData: PersonalData | null;
  readonly personalDataErased: boolean;
}

export type EntryFilter = Omit<store.EntryFilter, 'fromSeq' | 'toSeq'>;

export interface Checkpoint {
  readonly id: string;
  readonly statement: CheckpointStatement;
  /** Ed25519 over the RFC 8785 canonical JSON of `statement`, base64url. */
  readonly signature: string;
}

export interface PublicKeyDescription {
  readonly keyId: string;
  readonly algorithm: typeof SIGNATURE_ALGORITHM;
  readonly publicKeyPem: string;
  readonly jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string };
  readonly fingerprint: string;
}

/** A checkpoint with what a third party needs to check it and the entries it covers. */
export interface CheckpointExport {
  readonly format: 'keel.audit.checkpoint-export/v1';
  readonly orgId: string;
  readonly checkpoint: Checkpoint & { readonly algorithm: typeof SIGNATURE_ALGORITHM };
  readonly publicKey: PublicKeyDescription;
  /** The oldest entry still stored: exported entries start here (1 unless retention pruned). */
  readonly retainedFromSeq: number | null;
  /** The seq of the chain head when the export was made. */
  readonly headSeq: number;
}

export type CheckpointResult =
  | { readonly status: 'created' | 'current'; readonly checkpoint: Checkpoint }
  | { readonly status: 'empty' }
  /** The chain does not verify: nothing is signed, so a checkpoint never vouches for a tampered chain. */
  | { readonly status: 'broken'; readonly verification: ChainVerification };

export class InvalidCursorError extends Error {}

export interface AuditService {
  /**
   * Appends an entry to the org's chain. With `tx`, inside the caller's transaction, so the entry
   * exists exactly when the change it records commits; the org's chain is locked until `tx` ends,
   * so call it last. Without `tx`, in a transaction of its own.
   */
  record(tx: Tx | undefined, entry: AuditRecord): Promise<RecordedEntry>;
  /** Entries newest first, matching `filter`. */
  list(
    orgId: string,
    filter: EntryFilter,
    page: { limit: number; cursor?: string | undefined },
  ): Promise<{ entries: AuditEntry[]; nextCursor: string | null }>;
  /** Entries oldest first, at most `limit`, read in batches. */
  exportEntries(
    orgId: string,
    filter: store.EntryFilter,
    limit: number,
  ): AsyncGenerator<ExportedEntry, void, undefined>;
  /** Checks the org's whole stored chain against its hashes, checkpoints and head. */
  verify(orgId: string): Promise<ChainVerification>;
  /** Every org that has a chain, in id order. */
  listChainOrgs(): AsyncGenerator<string, void, undefined>;
  /** Verifies the chain since the last checkpoint, then signs its head (unless nothing is new). */
  checkpoint(orgId: string): Promise<CheckpointResult>;
  /** Checkpoints every org whose chain moved since its last checkpoint. */
  checkpointAll(): Promise<{ created: number; broken: string[] }>;
  listCheckpoints(
    orgId: string,
    page: { limit: number; cursor?: string | undefined },
  ): Promise<{ checkpoints: Checkpoint[]; nextCursor: string | null }>;
  exportCheckpoint(orgId: string, which: { id: string } | 'latest'): Promise<CheckpointExport | undefined>;
  /**
   * GDPR erasure: overwrites the IP, user agent and email of the org's entries whose actor is
   * `actorId` or whose recorded email is `email`. The chain still verifies. Returns how many
   * entries were erased, and records the erasure itself.
   */
  erasePersonalData(orgId: string, who: { actorId?: string; email?: string }): Promise<number>;
  /** Deletes entries older than the retention period, down to a checkpoint only. */
  pruneExpired(): Promise<number>;
}

export interface AuditServiceDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly log: Logger;
  /** Seals the signing keys. Needed to checkpoint; verification needs only the public keys. */
  readonly secretBox?: SecretBox;
  readonly retentionMs?: number;
}

export function encodeSeqCursor(seq: number): string {
  return Buffer.from(String(seq)).toString('base64url');
}

function decodeSeqCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const match = /^[1-9]\d{0,15}$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new InvalidCursorError('cursor is not valid');
  return Number(match[0]);
}

const signingKeyContext = (orgId: string, keyId: string) => `audit-signing-key:${orgId}:${keyId}`;

function toAuditEntry(entry: StoredEntry): AuditEntry {
  const { payload, personalData } = entry;
  const kept = personalData && !personalData.erased && hasPersonalData(personalData);
  return {
    seq: payload.seq,
    occurredAt: new Date(payload.occurredAt),
    actor: payload.actor,
    action: payload.action,
    target: payload.target,
    outcome: payload.outcome,
    status: payload.status,
    requestId: payload.requestId,
    details: payload.details,
    prevHash: payload.prevHash,
    hash: entry.hash,
    personalData: kept
      ? { ip: personalData.ip, userAgent: personalData.userAgent, actorEmail: personalData.actorEmail }
      : null,
    personalDataErased: personalData?.erased ?? false,
  };
}

function toExportedEntry(entry: StoredEntry): ExportedEntry {
  const personal = entry.personalData;
  return {
    seq: entry.payload.seq,
    hash: entry.hash,
    payload: entry.payload,
    personalData:
      personal && !personal.erased && hasPersonalData(personal)
        ? { ip: personal.ip, userAgent: personal.userAgent, actorEmail: personal.actorEmail }
        : null,
  };
}

const toCheckpoint = (row: store.CheckpointRow): Checkpoint => ({
  id: row.id,
  statement: checkpointStatement({
    orgId: row.org_id,
    seq: row.seq,
    hash: row.hash,
    createdAt: row.created_at,
    keyId: row.key_id,
  }),
  signature: row.signature,
});

const optionalText = (value: string | null | undefined, maxLength: number) =>
  value === undefined || value === null || value === '' ? null : storableText(value, maxLength);

export function createAuditService(deps: AuditServiceDeps): AuditService {
  const { database, clock, newId, log } = deps;
  const db = database.db;
  const retentionMs = deps.retentionMs ?? AUDIT_RETENTION_MS;

  function prepare(input: AuditRecord): { draft: EntryDraft; personal?: { salt: string } & PersonalData } {
    if (!input.orgId) throw new Error('audit.record: orgId is required');
    if (!input.action || input.action.length > MAX_ACTION_LENGTH)
      throw new Error(`audit.record: action must be 1 to ${MAX_ACTION_LENGTH} characters`);
    if ((input.actor.kind === 'user' || input.actor.kind === 'api_key') && !input.actor.id)
      throw new Error(`audit.record: a ${input.actor.kind} actor needs its id`);
    const data: PersonalData = {
      ip: optionalText(input.ip, MAX_IP_LENGTH),
      userAgent: optionalText(input.userAgent, MAX_USER_AGENT_LENGTH),
      actorEmail: optionalText(input.actorEmail, MAX_EMAIL_LENGTH),
    };
    const salt = hasPersonalData(data) ? randomBytes(SALT_BYTES).toString('hex') : undefined;
    const draft: EntryDraft = {
      occurredAt: clock.now(),
      actor: { kind: input.actor.kind, id: optionalText(input.actor.id, MAX_ID_LENGTH) },
      action: storableText(input.action, MAX_ACTION_LENGTH),
      target: normalizeTarget(input.target),
      outcome: input.outcome,
      status: input.status ?? null,
      requestId: optionalText(input.requestId, MAX_ID_LENGTH),
      details: normalizeDetails(input.details),
      personalDataDigest: salt ? personalDataDigest(salt, data) : null,
    };
    return { draft, ...(salt ? { personal: { salt, ...data } } : {}) };
  }

  /**
   * Verifies the org's chain from `fromSeq` (a checkpoint's seq, or the start) in one read-only
   * snapshot, so that concurrent appends and retention cannot make a sound chain look broken.
   */
  async function verifyFrom(
    orgId: string,
    fromSeq?: number,
  ): Promise<ChainVerification & { head?: ChainHead }> {
    return db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (tx) => {
        const head = await store.readHead(tx, orgId);
        const keys = await store.publicKeys(tx, orgId);
        const checkpoints = (await store.checkpointsFrom(tx, orgId, fromSeq ?? 0)).map((row) => {
          const checkpoint = toCheckpoint(row);
          const publicKey = keys.get(row.key_id);
          return {
            seq: row.seq,
            hash: row.hash,
            signatureValid:
              publicKey !== undefined && verifyCheckpoint(checkpoint.statement, row.signature, publicKey),
          };
        });
        let afterSeq = fromSeq === undefined ? undefined : fromSeq - 1;
        // Checkpoints below the oldest stored entry cover pruned history: they cannot be checked.
        const first = (await store.readEntries(tx, orgId, {}, { order: 'asc', afterSeq, limit: 1 }))[0];
        const verifier = createChainVerifier(
          orgId,
          checkpoints.filter((checkpoint) => first === undefined || checkpoint.seq >= first.payload.seq),
        );
        for (;;) {
          const batch = await store.readEntries(
            tx,
            orgId,
            {},
            { order: 'asc', afterSeq, limit: AUDIT_READ_BATCH_SIZE },
          );
          let intact = true;
          for (const entry of batch) {
            intact = verifier.push(entry);
            if (!intact) break;
          }
          if (!intact || batch.length < AUDIT_READ_BATCH_SIZE) break;
          afterSeq = batch.at(-1)!.payload.seq;
        }
        return { ...verifier.finish(head), ...(head ? { head } : {}) };
      });
  }

  async function signingKey(orgId: string): Promise<store.SigningKeyRow> {
    const existing = await store.findSigningKey(db, orgId);
    if (existing) return existing;
    if (!deps.secretBox) throw new Error('the audit service needs a secret box to create signing keys');
    const pair = generateSigningKeyPair();
    const id = newId('ask');
    // Another replica may store its key first; then this one is dropped and theirs is used.
    return store.insertSigningKey(db, {
      org_id: orgId,
      id,
      algorithm: SIGNATURE_ALGORITHM,
      public_key_pem: pair.publicKeyPem,
      sealed_private_key: deps.secretBox.seal(pair.privateKeyPem, signingKeyContext(orgId, id)),
      created_at: clock.now(),
    });
  }

  const service: AuditService = {
    async record(tx, input) {
      const { draft, personal } = prepare(input);
      const append = async (work: Tx): Promise<RecordedEntry> => {
        const head = await store.lockHead(work, input.orgId, GENESIS_HASH);
        const [entry] = appendToChain(input.orgId, head, [draft]);
        await store.appendEntries(
          work,
          input.orgId,
          [entry!],
          personal ? [{ seq: entry!.payload.seq, ...personal }] : [],
        );
        return { seq: entry!.payload.seq, hash: entry!.hash };
      };
      return tx ? append(tx) : database.transaction(append);
    },

    async list(orgId, filter, page) {
      const beforeSeq = decodeSeqCursor(page.cursor);
      const rows = await store.readEntries(db, orgId, filter, {
        order: 'desc',
        beforeSeq,
        limit: page.limit,
      });
      return {
        entries: rows.map(toAuditEntry),
        nextCursor: rows.length === page.limit ? encodeSeqCursor(rows.at(-1)!.payload.seq) : null,
      };
    },

    async *exportEntries(orgId, filter, limit) {
      let afterSeq: number | undefined;
      let remaining = limit;
      while (remaining > 0) {
        const size = Math.min(remaining, AUDIT_READ_BATCH_SIZE);
        const batch = await store.readEntries(db, orgId, filter, { order: 'asc', afterSeq, limit: size });
        for (const entry of batch) yield toExportedEntry(entry);
        remaining -= batch.length;
        if (batch.length < size) return;
        afterSeq = batch.at(-1)!.payload.seq;
      }
    },

    async verify(orgId) {
      const { head: _head, ...verification } = await verifyFrom(orgId);
      return verification;
    },

    async *listChainOrgs() {
      let afterOrgId: string | undefined;
      for (;;) {
        const orgs = await store.listChainOrgs(db, { afterOrgId, limit: AUDIT_ORG_BATCH_SIZE });
        yield* orgs;
        if (orgs.length < AUDIT_ORG_BATCH_SIZE) return;
        afterOrgId = orgs.at(-1);
      }
    },

    async checkpoint(orgId) {
      if (!deps.secretBox) throw new Error('the audit service needs a secret box to sign checkpoints');
      const latest = await store.findCheckpoint(db, orgId, 'latest');
      const verification = await verifyFrom(orgId, latest?.seq);
      if (!verification.valid) {
        log.error({ orgId, verification }, 'audit chain is broken: no checkpoint was signed');
        return { status: 'broken', verification };
      }
      const head = verification.head;
      if (!head || head.seq === 0) return { status: 'empty' };
      if (latest && latest.seq >= head.seq) return { status: 'current', checkpoint: toCheckpoint(latest) };
      const key = await signingKey(orgId);
      const statement = checkpointStatement({
        orgId,
        seq: head.seq,
        hash: head.hash,
        createdAt: clock.now(),
        keyId: key.id,
      });
      const privateKeyPem = deps.secretBox.open(key.sealed_private_key, signingKeyContext(orgId, key.id));
      const stored = await store.insertCheckpoint(db, {
        org_id: orgId,
        seq: head.seq,
        id: newId('acp'),
        hash: head.hash,
        created_at: new Date(statement.createdAt),
        key_id: key.id,
        signature: signCheckpoint(statement, privateKeyPem),
      });
      return { status: 'created', checkpoint: toCheckpoint(stored) };
    },

    async checkpointAll() {
      let created = 0;
      const broken: string[] = [];
      let afterOrgId: string | undefined;
      for (;;) {
        const orgs = await store.orgsNeedingCheckpoint(db, { afterOrgId, limit: AUDIT_ORG_BATCH_SIZE });
        for (const orgId of orgs) {
          const result = await service.checkpoint(orgId);
          if (result.status === 'created') created++;
          if (result.status === 'broken') broken.push(orgId);
        }
        if (orgs.length < AUDIT_ORG_BATCH_SIZE) return { created, broken };
        afterOrgId = orgs.at(-1);
      }
    },

    async listCheckpoints(orgId, page) {
      const rows = await store.listCheckpoints(db, orgId, {
        limit: page.limit,
        beforeSeq: decodeSeqCursor(page.cursor),
      });
      return {
        checkpoints: rows.map(toCheckpoint),
        nextCursor: rows.length === page.limit ? encodeSeqCursor(rows.at(-1)!.seq) : null,
      };
    },

    async exportCheckpoint(orgId, which) {
      const row = await store.findCheckpoint(db, orgId, which);
      if (!row) return undefined;
      const key = await store.findSigningKey(db, orgId);
      if (!key || key.id !== row.key_id)
        throw new Error(`checkpoint ${row.id} names a key the org does not have`);
      const [first] = await store.readEntries(db, orgId, {}, { order: 'asc', limit: 1 });
      const head = await store.readHead(db, orgId);
      return {
        format: 'keel.audit.checkpoint-export/v1',
        orgId,
        checkpoint: { ...toCheckpoint(row), algorithm: SIGNATURE_ALGORITHM },
        publicKey: {
          keyId: key.id,
          algorithm: SIGNATURE_ALGORITHM,
          publicKeyPem: key.public_key_pem,
          ...describePublicKey(key.public_key_pem),
        },
        retainedFromSeq: first?.payload.seq ?? null,
        headSeq: head?.seq ?? 0,
      };
    },

    async erasePersonalData(orgId, who) {
      if (who.actorId === undefined && who.email === undefined)
        throw new Error('erasePersonalData needs an actorId or an email');
      return database.transaction(async (tx) => {
        const erased = await store.erasePersonalData(tx, orgId, who, clock.now());
        // The erasure is itself audited; the email it was asked for is personal data, so it is not named.
        await service.record(tx, {
          orgId,
          actor: { kind: 'system' },
          action: 'audit.personal_data_erased',
          target: who.actorId !== undefined ? { actorId: who.actorId } : undefined,
          outcome: 'success',
          details: { erasedEntries: erased, byEmail: who.email !== undefined },
        });
        return erased;
      });
    },

    async pruneExpired() {
      const before = new Date(clock.now().getTime() - retentionMs);
      let total = 0;
      let afterOrgId: string | undefined;
      for (;;) {
        const orgs = await store.orgsWithPrunableEntries(db, before, {
          afterOrgId,
          limit: AUDIT_ORG_BATCH_SIZE,
        });
        for (const orgId of orgs) {
          // Checkpoints are created after the entries they cover, so every entry below one made
          // before the cutoff is older than the cutoff.
          const floor = await store.latestCheckpointBefore(db, orgId, before);
          if (!floor) continue;
          for (;;) {
            const deleted = await database.transaction((tx) =>
              store.pruneEntriesBelow(tx, orgId, floor.seq, AUDIT_PRUNE_BATCH_SIZE),
            );
            total += deleted;
            if (deleted === 0) break;
          }
          log.info({ orgId, belowSeq: floor.seq }, 'pruned expired audit entries');
        }
        if (orgs.length < AUDIT_ORG_BATCH_SIZE) return total;
        afterOrgId = orgs.at(-1);
      }
    },
  };
  return service;
}
