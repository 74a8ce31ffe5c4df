import { Readable } from 'node:stream';
import type { Static } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { csvHeader, csvRow, jsonlLine } from './domain/export-format.ts';
import {
  CheckpointExportSchema,
  CheckpointListQuery,
  CheckpointPage,
  CheckpointParams,
  EntryPage,
  ExportQuery,
  ListEntriesQuery,
  VerificationSchema,
} from './schemas.ts';
import {
  type AuditEntry,
  type AuditService,
  type Checkpoint,
  type EntryFilter,
  InvalidCursorError,
} from './service.ts';

const common = { tags: ['audit'], security: [{ bearer: [] }] };
const EXPORT_CONTENT_TYPES = {
  jsonl: 'application/jsonl; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
} as const;
/** Response header naming the most entries one export returns, so a client knows when to continue. */
export const EXPORT_LIMIT_HEADER = 'keel-export-limit';

const presentEntry = (entry: AuditEntry) => ({
  seq: entry.seq,
  occurredAt: entry.occurredAt.toISOString(),
  actor: entry.actor,
  action: entry.action,
  target: entry.target,
  outcome: entry.outcome,
  status: entry.status,
  requestId: entry.requestId,
  details: entry.details,
  prevHash: entry.prevHash,
  hash: entry.hash,
  personalData: entry.personalData,
  personalDataErased: entry.personalDataErased,
});

const presentCheckpoint = (checkpoint: Checkpoint) => ({
  id: checkpoint.id,
  seq: checkpoint.statement.seq,
  hash: checkpoint.statement.hash,
  createdAt: checkpoint.statement.createdAt,
  keyId: checkpoint.statement.keyId,
  statement: checkpoint.statement,
  algorithm: 'Ed25519' as const,
  signature: checkpoint.signature,
});

function toFilter(query: Partial<Static<typeof ListEntriesQuery>>): EntryFilter {
  return {
    actorId: query.actorId,
    actorKind: query.actorKind,
    actions: query.action,
    target: query.target,
    outcome: query.outcome,
    since: query.since === undefined ? undefined : new Date(query.since),
    until: query.until === undefined ? undefined : new Date(query.until),
  };
}

const invalidCursor = () =>
  new KeelError('VALIDATION_FAILED', 'cursor is not a cursor returned by this API', {
    errors: [{ path: '/cursor', in: 'query', message: 'is not a valid cursor' }],
  });

async function withCursor<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof InvalidCursorError) throw invalidCursor();
    throw error;
  }
}

export function auditRoutes(audit: AuditService) {
  return async (app: App) => {
    app.get(
      '/v1/audit/entries',
      {
        config: { permission: 'audit:read' },
        schema: {
          ...common,
          operationId: 'listAuditEntries',
          summary: 'List the org’s audit log, newest first',
          description:
            'Every mutating API call and every security event of the org, filtered by actor, action, ' +
            'target, outcome and time.',
          querystring: ListEntriesQuery,
          response: { 200: EntryPage },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        const page = await withCursor(() =>
          audit.list(orgId, toFilter(request.query), {
            limit: request.query.limit,
            cursor: request.query.cursor,
          }),
        );
        return { data: page.entries.map(presentEntry), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/audit/export',
      {
        config: { permission: 'audit:read' },
        schema: {
          ...common,
          operationId: 'exportAuditEntries',
          summary: 'Export the audit log as JSON Lines or CSV',
          description:
            'Streams entries oldest first, with the same filters as the list. JSONL lines are ' +
            '`{seq, hash, payload, personalData}`: the SHA-256 of the RFC 8785 canonical JSON of `payload` ' +
            'is `hash`, so an unfiltered range can be verified by anyone (docs/audit.md). At most `limit` ' +
            `entries (header \`${EXPORT_LIMIT_HEADER}\`); continue with \`fromSeq\`.`,
          querystring: ExportQuery,
          response: {
            200: {
              description: 'The entries, streamed.',
              content: {
                'application/jsonl': { schema: { type: 'string' } },
                'text/csv': { schema: { type: 'string' } },
              },
            },
          },
        },
      },
      async (request, reply) => {
        const orgId = requireOrgId(request);
        const { format, fromSeq, toSeq, limit } = request.query;
        const entries = audit.exportEntries(orgId, { ...toFilter(request.query), fromSeq, toSeq }, limit);
        const lines = async function* () {
          if (format === 'csv') yield csvHeader();
          for await (const entry of entries) yield format === 'csv' ? csvRow(entry) : jsonlLine(entry);
        };
        return (
          reply
            .type(EXPORT_CONTENT_TYPES[format])
            .header('content-disposition', `attachment; filename="audit-${orgId}.${format}"`)
            .header(EXPORT_LIMIT_HEADER, String(limit))
            // The declared response is text per content type; the body is streamed as it is read.
            .send(Readable.from(lines()) as unknown as string)
        );
      },
    );

    app.get(
      '/v1/audit/verification',
      {
        config: { permission: 'audit:read' },
        schema: {
          ...common,
          operationId: 'verifyAuditChain',
          summary: 'Verify the org’s audit chain',
          description:
            'Recomputes every stored entry’s hash and link, checks each checkpoint’s signature and hash, ' +
            'and names the first broken seq. Reads the whole retained chain: expect it to take time on ' +
            'large logs (the `keel audit verify` command does the same from the server).',
          response: { 200: VerificationSchema },
        },
      },
      async (request) => audit.verify(requireOrgId(request)),
    );

    app.get(
      '/v1/audit/checkpoints',
      {
        config: { permission: 'audit:read' },
        schema: {
          ...common,
          operationId: 'listAuditCheckpoints',
          summary: 'List the signed checkpoints of the org’s chain, newest first',
          querystring: CheckpointListQuery,
          response: { 200: CheckpointPage },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        const page = await withCursor(() =>
          audit.listCheckpoints(orgId, { limit: request.query.limit, cursor: request.query.cursor }),
        );
        return { data: page.checkpoints.map(presentCheckpoint), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/audit/checkpoints/:checkpointId/export',
      {
        config: { permission: 'audit:read' },
        schema: {
          ...common,
          operationId: 'exportAuditCheckpoint',
          summary: 'Export a signed checkpoint with its public key',
          description:
            'The checkpoint (`latest` or an id), its Ed25519 signature and the org’s public key (PEM, JWK ' +
            'and fingerprint). With `GET /v1/audit/export?format=jsonl` a third party verifies the chain ' +
            'with the public key alone (docs/audit.md).',
          params: CheckpointParams,
          response: { 200: CheckpointExportSchema },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        const { checkpointId } = request.params;
        const exported = await audit.exportCheckpoint(
          orgId,
          checkpointId === 'latest' ? 'latest' : { id: checkpointId },
        );
        if (!exported) {
          throw new KeelError(
            'AUDIT_CHECKPOINT_NOT_FOUND',
            checkpointId === 'latest' ? 'The org has no checkpoint yet' : `No checkpoint ${checkpointId}`,
          );
        }
        return { ...exported, checkpoint: presentCheckpoint(exported.checkpoint) };
      },
    );
  };
}
