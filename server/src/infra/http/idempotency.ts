import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { sql } from 'kysely';
import type { JobDefinition } from '../jobs/runner.ts';
import type { Runtime } from '../runtime.ts';
import { KeelError } from './errors.ts';
import { addRouteHooks } from './route-hooks.ts';

/** How long a stored response is replayed for a retried key (Stripe keeps keys for 24 h). */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
/** A request still marked in progress after this long died with its process; it may run again. */
export const IDEMPOTENCY_IN_PROGRESS_STALE_MS = 60_000;
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
/** Responses larger than this are not stored; a retry of such a request gets 409 instead. */
export const IDEMPOTENCY_MAX_STORED_BODY_BYTES = 1024 * 1024;
/** Rows deleted per statement by the pruning job, so it never holds long locks. */
export const IDEMPOTENCY_PRUNE_BATCH_SIZE = 5_000;
export const IDEMPOTENCY_PRUNE_JOB = 'idempotency.prune-expired';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
const REPLAYED_HEADER = 'idempotent-replayed';
const KEY_PATTERN = /^[\x21-\x7e]+$/;
/** Response headers stored with the body and replayed. */
const REPLAYED_HEADERS = ['content-type', 'location'];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route accepts an Idempotency-Key header: a retried request replays the first answer. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotencyKey: string | undefined;
  }
}

function requestHash(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method}\n${request.routeOptions.url}\n${JSON.stringify(request.params ?? {})}\n`)
    .update(JSON.stringify(request.body ?? null))
    .digest('hex');
}

/**
 * Idempotency-Key support for mutating routes that set `config.idempotent`, scoped to the org
 * that authenticated the request (the key alone is not globally unique). The first request
 * claims the key; concurrent duplicates get 409; later retries replay the stored response; a
 * retry with a different body is rejected. A 5xx answer releases the key so a retry runs again.
 */
export const idempotencyPlugin = fp<{ runtime: Runtime }>(async (app, { runtime }) => {
  const { db } = runtime.database;
  app.decorateRequest('idempotencyKey', undefined);

  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers[IDEMPOTENCY_HEADER];
    if (header === undefined) return;
    const key = Array.isArray(header) ? header[0] : header;
    if (!key || key.length > IDEMPOTENCY_KEY_MAX_LENGTH || !KEY_PATTERN.test(key)) {
      throw new KeelError(
        'VALIDATION_FAILED',
        `Idempotency-Key must be 1-${IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters`,
        {
          errors: [
            { path: `/${IDEMPOTENCY_HEADER}`, in: 'headers', message: 'is not a valid idempotency key' },
          ],
        },
      );
    }
    const orgId = request.orgId;
    if (!orgId) return; // Unauthenticated requests have no scope to keep keys in.
    const hash = requestHash(request);
    const now = runtime.clock.now();
    const claim = () =>
      db
        .insertInto('idempotency_keys')
        .values({
          org_id: orgId,
          key,
          method: request.method,
          route: request.routeOptions.url ?? '',
          request_hash: hash,
          status: 'in_progress',
          response_status: null,
          response_headers: null,
          response_body: null,
          created_at: now,
          expires_at: new Date(now.getTime() + IDEMPOTENCY_KEY_TTL_MS),
        })
        .onConflict((conflict) => conflict.columns(['org_id', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
    if (await claim()) {
      request.idempotencyKey = key;
      return;
    }
    const existing = await db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('key', '=', key)
      .executeTakeFirst();
    const stale =
      !existing ||
      existing.expires_at <= now ||
      (existing.status === 'in_progress' &&
        now.getTime() - existing.created_at.getTime() > IDEMPOTENCY_IN_PROGRESS_STALE_MS);
    if (stale) {
      // Expired, or its request died mid-flight: release it (only if it is still that row) and claim again.
      await db
        .deleteFrom('idempotency_keys')
        .where('org_id', '=', orgId)
        .where('key', '=', key)
        .where('created_at', '=', existing?.created_at ?? now)
        .execute();
      if (await claim()) {
        request.idempotencyKey = key;
        return;
      }
      throw new KeelError('IDEMPOTENCY_REQUEST_IN_PROGRESS', undefined, { headers: { 'retry-after': '1' } });
    }
    if (existing.request_hash !== hash) {
      throw new KeelError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used with a different request; use a new key for a new request',
      );
    }
    if (existing.status === 'in_progress') {
      throw new KeelError('IDEMPOTENCY_REQUEST_IN_PROGRESS', undefined, { headers: { 'retry-after': '1' } });
    }
    for (const [name, value] of Object.entries(existing.response_headers ?? {})) reply.header(name, value);
    reply.header(REPLAYED_HEADER, 'true');
    return reply.code(existing.response_status ?? 200).send(existing.response_body ?? '');
  };

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const key = request.idempotencyKey;
    const orgId = request.orgId;
    if (!key || !orgId) return payload;
    request.idempotencyKey = undefined;
    const body =
      typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : null;
    const where = db.deleteFrom('idempotency_keys').where('org_id', '=', orgId).where('key', '=', key);
    if (
      reply.statusCode >= 500 ||
      body === null ||
      Buffer.byteLength(body) > IDEMPOTENCY_MAX_STORED_BODY_BYTES
    ) {
      if (reply.statusCode >= 500 || body === null) await where.execute();
      return payload;
    }
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    await db
      .updateTable('idempotency_keys')
      .set({
        status: 'completed',
        response_status: reply.statusCode,
        response_headers: JSON.stringify(headers),
        response_body: body,
      })
      .where('org_id', '=', orgId)
      .where('key', '=', key)
      .execute();
    return payload;
  };

  // Only idempotent routes pay for the check; the others never see these hooks.
  addRouteHooks(app, (route) => (route.config?.idempotent ? { preHandler, onSend } : undefined));
});

/** Deletes expired keys in bounded batches; returns how many went. */
export async function pruneExpiredIdempotencyKeys(runtime: Runtime): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql<{ count: string }>`
      with doomed as (
        select org_id, key from idempotency_keys
        where expires_at <= ${runtime.clock.now()}
        limit ${IDEMPOTENCY_PRUNE_BATCH_SIZE}
        for update skip locked
      )
      delete from idempotency_keys k using doomed
      where k.org_id = doomed.org_id and k.key = doomed.key`.execute(runtime.database.db);
    const deleted = Number(result.numAffectedRows ?? 0n);
    total += deleted;
    if (deleted < IDEMPOTENCY_PRUNE_BATCH_SIZE) return total;
  }
}

export function idempotencyJobs(runtime: Runtime): JobDefinition[] {
  return [
    {
      name: IDEMPOTENCY_PRUNE_JOB,
      cron: '*/15 * * * *',
      handler: async (_payload, context) => {
        const deleted = await pruneExpiredIdempotencyKeys(runtime);
        if (deleted > 0) context.log.info({ deleted }, 'pruned expired idempotency keys');
      },
    },
  ];
}
