import { Type } from 'typebox';
import { CHECKPOINT_KIND, CHECKPOINT_VERSION, SIGNATURE_ALGORITHM } from './domain/checkpoint.ts';

/** Largest page of entries or checkpoints one request returns. */
export const MAX_AUDIT_PAGE = 100;
export const DEFAULT_AUDIT_PAGE = 50;
/** Most entries one export returns; continue with `fromSeq` = the last seq + 1. */
export const MAX_EXPORT_ENTRIES = 100_000;
/** Most actions one filter may name. */
export const MAX_ACTION_FILTERS = 20;

const Hash = Type.String({
  pattern: '^[0-9a-f]{64}$',
  description: 'SHA-256, hex.',
  examples: ['9f2b5c0d4e8a7f6b3c1d2e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b'],
});
const Seq = Type.Integer({ minimum: 1, description: 'Position in the org’s chain, from 1.', examples: [42] });
const DateTime = Type.String({ format: 'date-time', examples: ['2026-11-22T12:00:00.000Z'] });
const nullable = <T extends import('typebox').TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const ActorKind = Type.Union(
  [Type.Literal('user'), Type.Literal('api_key'), Type.Literal('system'), Type.Literal('anonymous')],
  { description: 'Who acted: a signed-in user, an API key, Keel itself, or nobody signed in.' },
);
const Outcome = Type.Union([Type.Literal('success'), Type.Literal('failure')], {
  description: 'success for 1xx-3xx answers, failure for 4xx and 5xx.',
});

const Actor = Type.Object({
  kind: ActorKind,
  id: nullable(Type.String({ examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'] })),
});

const Target = nullable(
  Type.Record(Type.String(), Type.String(), {
    description: 'What was acted on: the route’s parameters, or the ids a module names.',
    examples: [{ endpointId: 'whe_01jd7x8m3q9f2k5v6w7y8z9a0b' }],
  }),
);

const PersonalData = Type.Object(
  {
    ip: nullable(Type.String({ examples: ['203.0.113.7'] })),
    userAgent: nullable(Type.String({ examples: ['keel-sdk/0.1.0'] })),
    actorEmail: nullable(Type.String({ examples: ['ada@example.com'] })),
  },
  { description: 'Kept outside the hash chain, so it can be erased without breaking verification.' },
);

export const AuditEntrySchema = Type.Object(
  {
    seq: Seq,
    occurredAt: DateTime,
    actor: Actor,
    action: Type.String({
      description: 'A module’s event (`api_key.created`) or an API call (`POST /v1/webhooks/endpoints`).',
      examples: ['api_key.created'],
    }),
    target: Target,
    outcome: Outcome,
    status: nullable(Type.Integer({ description: 'The HTTP status of an API call.', examples: [201] })),
    requestId: nullable(Type.String({ examples: ['req_01jd7x8m3q9f2k5v6w7y8z9a0b'] })),
    details: Type.Unknown({ description: 'Context the module recorded (no personal data), or null.' }),
    prevHash: Hash,
    hash: Hash,
    personalData: nullable(PersonalData),
    personalDataErased: Type.Boolean({ description: 'True once the personal data was erased (GDPR).' }),
  },
  { $id: 'AuditEntry', title: 'AuditEntry' },
);

const filters = {
  actorId: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'Only entries by this user or API key.',
      examples: ['usr_01jd7x8m3q9f2k5v6w7y8z9a0b'],
    }),
  ),
  actorKind: Type.Optional(ActorKind),
  action: Type.Optional(
    Type.Array(Type.String({ maxLength: 200, examples: ['api_key.created'] }), {
      maxItems: MAX_ACTION_FILTERS,
      description: 'Only these actions (repeat the parameter for several).',
    }),
  ),
  target: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'Only entries that name this id in their target.',
      examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'],
    }),
  ),
  outcome: Type.Optional(Outcome),
  since: Type.Optional(
    Type.String({ format: 'date-time', description: 'Only entries at or after this time.' }),
  ),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'Only entries before this time.' })),
};

export const ListEntriesQuery = Type.Object(
  {
    ...filters,
    cursor: Type.Optional(
      Type.String({ maxLength: 40, description: 'The `nextCursor` of the previous page.' }),
    ),
    limit: Type.Integer({ minimum: 1, maximum: MAX_AUDIT_PAGE, default: DEFAULT_AUDIT_PAGE }),
  },
  { additionalProperties: false },
);

export const EntryPage = Type.Object({
  data: Type.Array(AuditEntrySchema, { description: 'Newest first.' }),
  nextCursor: nullable(
    Type.String({ description: 'Pass as `cursor` for the next (older) page; null at the end.' }),
  ),
});

export const ExportQuery = Type.Object(
  {
    ...filters,
    format: Type.Union([Type.Literal('jsonl'), Type.Literal('csv')], {
      default: 'jsonl',
      description: 'jsonl: one `{seq, hash, payload, personalData}` per line, verifiable. csv: for reading.',
    }),
    fromSeq: Type.Optional(Type.Integer({ minimum: 1, description: 'Only entries at or after this seq.' })),
    toSeq: Type.Optional(Type.Integer({ minimum: 1, description: 'Only entries at or before this seq.' })),
    limit: Type.Integer({
      minimum: 1,
      maximum: MAX_EXPORT_ENTRIES,
      default: MAX_EXPORT_ENTRIES,
      description:
        'Most entries to export; when exactly this many come back, continue from the last seq + 1.',
    }),
  },
  { additionalProperties: false },
);

export const VerificationSchema = Type.Object(
  {
    valid: Type.Boolean({ description: 'True when every stored entry, checkpoint and the head agree.' }),
    checkedEntries: Type.Integer({
      description: 'Entries read, up to the first broken one.',
      examples: [1200],
    }),
    firstSeq: nullable(Type.Integer({ description: 'The oldest stored entry (1 unless retention pruned).' })),
    lastSeq: nullable(Type.Integer({ description: 'The last entry that checked out.' })),
    checkpointsChecked: Type.Integer({ examples: [12] }),
    firstBrokenSeq: Type.Optional(
      Type.Integer({ description: 'The first seq that does not verify: look there.', examples: [57] }),
    ),
    reason: Type.Optional(
      Type.String({
        description:
          'hash_mismatch, prev_hash_mismatch, missing_entries, unanchored_start, checkpoint_mismatch, ' +
          'checkpoint_signature_invalid, personal_data_mismatch, head_mismatch or org_mismatch.',
        examples: ['hash_mismatch'],
      }),
    ),
    detail: Type.Optional(
      Type.String({ examples: ['the entry’s content does not hash to its stored hash'] }),
    ),
  },
  { $id: 'AuditVerification', title: 'AuditVerification' },
);

const Statement = Type.Object(
  {
    kind: Type.Literal(CHECKPOINT_KIND),
    version: Type.Literal(CHECKPOINT_VERSION),
    orgId: Type.String({ examples: ['org_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    seq: Seq,
    hash: Hash,
    createdAt: DateTime,
    keyId: Type.String({ examples: ['ask_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
  },
  { description: 'What is signed, as RFC 8785 canonical JSON: the chain head `hash` at `seq`.' },
);

export const CheckpointSchema = Type.Object(
  {
    id: Type.String({ examples: ['acp_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    seq: Seq,
    hash: Hash,
    createdAt: DateTime,
    keyId: Type.String({ examples: ['ask_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    statement: Statement,
    algorithm: Type.Literal(SIGNATURE_ALGORITHM),
    signature: Type.String({
      description: 'Ed25519 over the canonical JSON of `statement`, base64url.',
      examples: ['m1wq2Xb3Jq0u4c5fY7v8Jd0m1cZ2b3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0E1F2G3H4I5J6K7L8M9N0OA'],
    }),
  },
  { $id: 'AuditCheckpoint', title: 'AuditCheckpoint' },
);

export const CheckpointPage = Type.Object({
  data: Type.Array(CheckpointSchema, { description: 'Newest first.' }),
  nextCursor: nullable(Type.String()),
});

export const CheckpointListQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 40 })),
    limit: Type.Integer({ minimum: 1, maximum: MAX_AUDIT_PAGE, default: DEFAULT_AUDIT_PAGE }),
  },
  { additionalProperties: false },
);

export const CheckpointParams = Type.Object({
  checkpointId: Type.String({
    maxLength: 100,
    description: 'A checkpoint id, or `latest`.',
    examples: ['latest', 'acp_01jd7x8m3q9f2k5v6w7y8z9a0b'],
  }),
});

export const CheckpointExportSchema = Type.Object(
  {
    format: Type.Literal('keel.audit.checkpoint-export/v1'),
    orgId: Type.String(),
    checkpoint: CheckpointSchema,
    publicKey: Type.Object({
      keyId: Type.String({ examples: ['ask_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
      algorithm: Type.Literal(SIGNATURE_ALGORITHM),
      publicKeyPem: Type.String({ description: 'SPKI PEM.' }),
      jwk: Type.Object({ kty: Type.Literal('OKP'), crv: Type.Literal('Ed25519'), x: Type.String() }),
      fingerprint: Type.String({
        description: 'SHA-256 (hex) of the raw 32-byte public key: compare it with one you pinned.',
      }),
    }),
    retainedFromSeq: nullable(
      Type.Integer({ description: 'The oldest stored entry: `GET /v1/audit/export` starts there.' }),
    ),
    headSeq: Type.Integer({ description: 'The chain head when this export was made.' }),
  },
  {
    $id: 'AuditCheckpointExport',
    title: 'AuditCheckpointExport',
    description:
      'Everything a third party needs, with the JSONL entry export, to verify the chain with the public ' +
      'key alone: see docs/audit.md.',
  },
);
