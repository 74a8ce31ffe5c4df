import { canonicalJson, sha256Hex } from './canonical.ts';

/** The `prevHash` of an org's first entry. */
export const GENESIS_HASH = '0'.repeat(64);
/** Version of the hashed payload's shape; a new shape gets a new number and old entries keep theirs. */
export const PAYLOAD_VERSION = 1;
/** A target names at most this many things (route params, ids). */
export const MAX_TARGET_KEYS = 10;
export const MAX_TARGET_VALUE_LENGTH = 200;
/** Longest action name; route patterns are the longest in practice. */
export const MAX_ACTION_LENGTH = 200;
/** Longest actor id and request id. */
export const MAX_ID_LENGTH = 200;
/** Largest canonical `details` object, in UTF-8 bytes. */
export const MAX_DETAILS_BYTES = 4096;

export const ACTOR_KINDS = ['user', 'api_key', 'system', 'anonymous'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];
export const OUTCOMES = ['success', 'failure'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Who acted: a user (`usr_…`), an API key (`key_…`), Keel itself, or nobody signed in. */
export interface AuditActor {
  readonly kind: ActorKind;
  readonly id: string | null;
}

/**
 * Exactly what an entry's hash covers. It holds no personal data: the IP, user agent and email
 * live beside it and are bound only through `personalDataDigest`, a salted digest that means
 * nothing once the salt is erased with them.
 */
export interface EntryPayload {
  readonly v: typeof PAYLOAD_VERSION;
  readonly orgId: string;
  readonly seq: number;
  readonly prevHash: string;
  readonly occurredAt: string;
  readonly actor: AuditActor;
  readonly action: string;
  readonly target: Readonly<Record<string, string>> | null;
  readonly outcome: Outcome;
  /** The HTTP status of an API call; null for events recorded by a module. */
  readonly status: number | null;
  readonly requestId: string | null;
  readonly details: Readonly<Record<string, JsonValue>> | null;
  readonly personalDataDigest: string | null;
}

export interface PersonalData {
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly actorEmail: string | null;
}

/** An entry before it has a place in the chain. */
export interface EntryDraft {
  readonly occurredAt: Date;
  readonly actor: AuditActor;
  readonly action: string;
  readonly target: Readonly<Record<string, string>> | null;
  readonly outcome: Outcome;
  readonly status: number | null;
  readonly requestId: string | null;
  readonly details: Readonly<Record<string, JsonValue>> | null;
  readonly personalDataDigest: string | null;
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export interface ChainedEntry {
  readonly payload: EntryPayload;
  readonly hash: string;
}

/** SHA-256 (hex) of the RFC 8785 canonical JSON of the payload. */
export function entryHash(payload: EntryPayload): string {
  return sha256Hex(canonicalJson(payload));
}

/**
 * Binds personal data to an entry without putting it in the chain: the digest of the data with
 * a random salt stored beside it. While both exist, a changed IP or email is detected; erasing
 * them (salt included) leaves a digest nothing can be learned from and a chain that still verifies.
 */
export function personalDataDigest(salt: string, data: PersonalData): string {
  return sha256Hex(
    canonicalJson({ salt, ip: data.ip, userAgent: data.userAgent, actorEmail: data.actorEmail }),
  );
}

export function hasPersonalData(data: PersonalData): boolean {
  return data.ip !== null || data.userAgent !== null || data.actorEmail !== null;
}

/** Places drafts after `head`, in order: each entry's `prevHash` is the hash of the one before. */
export function appendToChain(orgId: string, head: ChainHead, drafts: readonly EntryDraft[]): ChainedEntry[] {
  const chained: ChainedEntry[] = [];
  let previous = head;
  for (const draft of drafts) {
    const payload: EntryPayload = {
      v: PAYLOAD_VERSION,
      orgId,
      seq: previous.seq + 1,
      prevHash: previous.hash,
      occurredAt: draft.occurredAt.toISOString(),
      actor: { kind: draft.actor.kind, id: draft.actor.id },
      action: draft.action,
      target: draft.target,
      outcome: draft.outcome,
      status: draft.status,
      requestId: draft.requestId,
      details: draft.details,
      personalDataDigest: draft.personalDataDigest,
    };
    const hash = entryHash(payload);
    chained.push({ payload, hash });
    previous = { seq: payload.seq, hash };
  }
  return chained;
}

// Text that PostgreSQL cannot store (NUL) or JSON cannot encode (lone surrogates) is replaced,
// so that what is hashed is exactly what is stored and read back.
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what must be found.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function storableText(value: string, maxLength: number): string {
  const cut = value.length > maxLength ? value.slice(0, maxLength) : value;
  return cut.replace(UNSTORABLE, '\uFFFD');
}

/** A target as stored: at most MAX_TARGET_KEYS string values, or null when there is none. */
export function normalizeTarget(
  target: Readonly<Record<string, unknown>> | null | undefined,
): Record<string, string> | null {
  if (!target) return null;
  const normalized: Record<string, string> = {};
  let count = 0;
  for (const [key, value] of Object.entries(target)) {
    if (value === undefined || value === null) continue;
    if (++count > MAX_TARGET_KEYS) break;
    normalized[storableText(key, MAX_TARGET_VALUE_LENGTH)] = storableText(
      String(value),
      MAX_TARGET_VALUE_LENGTH,
    );
  }
  return count === 0 ? null : normalized;
}

/**
 * Details as stored: the JSON form of the value with unstorable text replaced. Oversized details
 * are a programmer error (they belong in the module's own tables, not the audit log).
 */
export function normalizeDetails(
  details: Readonly<Record<string, unknown>> | null | undefined,
): Record<string, JsonValue> | null {
  if (!details) return null;
  const scrubbed = JSON.parse(JSON.stringify(details), (_key, value: unknown) =>
    typeof value === 'string' ? storableText(value, Number.MAX_SAFE_INTEGER) : value,
  ) as Record<string, JsonValue>;
  const size = Buffer.byteLength(canonicalJson(scrubbed));
  if (size > MAX_DETAILS_BYTES) {
    throw new Error(`audit details are ${size} bytes; at most ${MAX_DETAILS_BYTES} are allowed`);
  }
  return Object.keys(scrubbed).length === 0 ? null : scrubbed;
}

// Verification ---------------------------------------------------------------------------------

/** An entry as read back from storage, to be checked. */
export interface StoredEntry {
  /** Rebuilt from the stored columns, so a changed column changes the recomputed hash. */
  readonly payload: EntryPayload;
  /** The stored hash. */
  readonly hash: string;
  /** Absent when the entry has no personal data row. */
  readonly personalData?: StoredPersonalData;
}

export interface StoredPersonalData extends PersonalData {
  readonly salt: string | null;
  readonly erased: boolean;
}

/** A signed checkpoint, with whether its signature checked out under its org's public key. */
export interface CheckpointAnchor {
  readonly seq: number;
  readonly hash: string;
  readonly signatureValid: boolean;
}

export type BreakReason =
  /** The entry's content no longer hashes to its stored hash: it was changed. */
  | 'hash_mismatch'
  /** The entry does not point at the hash of the entry before it. */
  | 'prev_hash_mismatch'
  /** Entries are missing: a gap in seq, or a checkpoint or head beyond the last entry. */
  | 'missing_entries'
  /** The oldest stored entry is neither seq 1 nor a checkpoint that retention pruned down to. */
  | 'unanchored_start'
  /** The entry at a checkpoint's seq does not have the hash the checkpoint signed. */
  | 'checkpoint_mismatch'
  /** A checkpoint's signature does not verify under its org's public key. */
  | 'checkpoint_signature_invalid'
  /** The personal data beside the entry is not what the entry's digest committed to. */
  | 'personal_data_mismatch'
  /** The chain head (the next append's starting point) disagrees with the last entry. */
  | 'head_mismatch'
  /** The entry names another org than the chain it is stored in. */
  | 'org_mismatch';

export interface ChainVerification {
  readonly valid: boolean;
  /** Entries read, up to and including the first broken one. */
  readonly checkedEntries: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  /** Checkpoints whose seq was reached and whose hash and signature were checked. */
  readonly checkpointsChecked: number;
  readonly firstBrokenSeq?: number;
  readonly reason?: BreakReason;
  readonly detail?: string;
}

export interface ChainVerifier {
  /** Feeds the next stored entry, in seq order. Returns false once the chain is broken. */
  push(entry: StoredEntry): boolean;
  /** The result, once every entry was pushed; `head` is the stored chain head, if any. */
  finish(head: ChainHead | undefined): ChainVerification;
}

/**
 * Checks an org's chain entry by entry, holding only the previous entry: each hash is recomputed
 * from the payload, each `prevHash` must be the hash before it, seqs must have no gap, each
 * checkpoint reached must match and be validly signed, and the head must be the last entry. It
 * stops at the first broken seq, which is what an operator needs to look at.
 */
export function createChainVerifier(orgId: string, checkpoints: readonly CheckpointAnchor[]): ChainVerifier {
  const bySeq = new Map(checkpoints.map((checkpoint) => [checkpoint.seq, checkpoint]));
  let previous: ChainHead | undefined;
  let firstSeq: number | null = null;
  let checkedEntries = 0;
  let checkpointsChecked = 0;
  let broken: { seq: number; reason: BreakReason; detail: string } | undefined;

  const fail = (seq: number, reason: BreakReason, detail: string) => {
    broken = { seq, reason, detail };
    return false;
  };

  const result = (): ChainVerification => ({
    valid: broken === undefined,
    checkedEntries,
    firstSeq,
    lastSeq: previous?.seq ?? null,
    checkpointsChecked,
    ...(broken ? { firstBrokenSeq: broken.seq, reason: broken.reason, detail: broken.detail } : {}),
  });

  return {
    push(entry) {
      if (broken) return false;
      const { payload } = entry;
      const seq = payload.seq;
      checkedEntries++;
      if (previous === undefined) {
        firstSeq = seq;
        // After retention the chain starts at a checkpoint: its signed hash vouches for the start.
        if (seq === 1) {
          if (payload.prevHash !== GENESIS_HASH)
            return fail(seq, 'prev_hash_mismatch', 'the first entry does not start from the genesis hash');
        } else if (!bySeq.has(seq)) {
          return fail(
            seq - 1,
            'unanchored_start',
            `entries before seq ${seq} are missing and no checkpoint anchors seq ${seq}`,
          );
        }
      } else {
        if (seq !== previous.seq + 1)
          return fail(
            previous.seq + 1,
            'missing_entries',
            `seq ${previous.seq + 1} to ${seq - 1} are missing`,
          );
        if (payload.prevHash !== previous.hash)
          return fail(seq, 'prev_hash_mismatch', `prevHash is not the hash of seq ${previous.seq}`);
      }
      if (payload.orgId !== orgId) return fail(seq, 'org_mismatch', `the entry names org ${payload.orgId}`);
      const recomputed = entryHash(payload);
      if (recomputed !== entry.hash)
        return fail(seq, 'hash_mismatch', 'the entry’s content does not hash to its stored hash');
      const personal = entry.personalData;
      if (personal && !personal.erased && hasPersonalData(personal)) {
        if (
          payload.personalDataDigest === null ||
          personal.salt === null ||
          personalDataDigest(personal.salt, personal) !== payload.personalDataDigest
        ) {
          return fail(seq, 'personal_data_mismatch', 'the personal data is not what the entry committed to');
        }
      }
      const checkpoint = bySeq.get(seq);
      if (checkpoint) {
        checkpointsChecked++;
        if (!checkpoint.signatureValid)
          return fail(
            seq,
            'checkpoint_signature_invalid',
            `the checkpoint at seq ${seq} has an invalid signature`,
          );
        if (checkpoint.hash !== entry.hash)
          return fail(seq, 'checkpoint_mismatch', `the checkpoint at seq ${seq} signed another hash`);
      }
      previous = { seq, hash: entry.hash };
      return true;
    },

    finish(head) {
      if (broken) return result();
      const lastSeq = previous?.seq ?? 0;
      const beyond = checkpoints.filter((checkpoint) => checkpoint.seq > lastSeq).map((c) => c.seq);
      if (beyond.length > 0) {
        fail(
          lastSeq + 1,
          'missing_entries',
          `checkpoints reach seq ${Math.max(...beyond)} but entries stop at ${lastSeq}`,
        );
      } else if (head && head.seq > lastSeq) {
        fail(lastSeq + 1, 'missing_entries', `the head is at seq ${head.seq} but entries stop at ${lastSeq}`);
      } else if (head && previous && head.seq < previous.seq) {
        // Entries past the head were written without going through the head: the first is suspect.
        fail(
          head.seq + 1,
          'head_mismatch',
          `the head is at seq ${head.seq} but entries reach ${previous.seq}`,
        );
      } else if (head && previous && head.hash !== previous.hash) {
        // The head is where the next append starts: that append would be the first broken entry.
        fail(previous.seq + 1, 'head_mismatch', 'the head’s hash is not the last entry’s hash');
      } else if (!head && previous) {
        fail(previous.seq + 1, 'head_mismatch', 'entries exist but the chain has no head');
      }
      return result();
    },
  };
}
