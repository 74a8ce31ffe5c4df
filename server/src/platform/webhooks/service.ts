import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { KeelError } from '../../infra/http/errors.ts';
import type { SsrfGuard } from '../../infra/http/ssrf.ts';
import type { Runtime } from '../../infra/runtime.ts';
import { eventDefinition } from '../events/index.ts';
import { DELIVERIES_CHANNEL, webhookBody } from './dispatcher.ts';
import { WEBHOOK_TEST } from './events.ts';
import {
  type AttemptRow,
  type DeliveryRow,
  type DeliveryStatus,
  type EndpointRow,
  insertDeliveries,
} from './store.ts';

/** Endpoints one org may have. */
export const MAX_ENDPOINTS_PER_ORG = 50;
/** Event types one endpoint may filter on. */
export const MAX_EVENT_TYPES_PER_ENDPOINT = 100;
/** A rotated-out secret keeps signing for this long unless the caller picks another grace. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3600;
export const MAX_ROTATION_GRACE_SECONDS = 7 * 24 * 3600;
/** Failed deliveries one "recover" call requeues. */
export const MAX_RECOVER_DELIVERIES = 10_000;
const SECRET_BYTES = 24;

export interface EndpointInput {
  readonly url: string;
  readonly description?: string;
  readonly eventTypes?: readonly string[];
  readonly ordered?: boolean;
  readonly rateLimitPerSecond?: number | null;
}

export interface EndpointPatch extends Partial<EndpointInput> {
  readonly enabled?: boolean;
}

export interface Page<T> {
  readonly data: T[];
  readonly nextCursor: string | null;
}

const newSecret = () => `whsec_${randomBytes(SECRET_BYTES).toString('base64')}`;
const context = (endpointId: string) => `webhook_endpoint:${endpointId}`;

export function createWebhooksService(deps: { runtime: Runtime; guard: SsrfGuard }) {
  const { runtime, guard } = deps;
  const { db } = runtime.database;

  function checkInput(input: Partial<EndpointInput>) {
    const errors: { path: string; in: 'body'; message: string }[] = [];
    if (input.url !== undefined) {
      const checked = guard.checkUrl(input.url);
      if (!checked.ok) errors.push({ path: '/url', in: 'body', message: checked.reason });
    }
    for (const [index, type] of (input.eventTypes ?? []).entries()) {
      if (!eventDefinition(type))
        errors.push({ path: `/eventTypes/${index}`, in: 'body', message: `no event type ${type}` });
    }
    if (errors.length > 0) {
      throw new KeelError('VALIDATION_FAILED', errors.map((e) => `body${e.path} ${e.message}`).join('; '), {
        errors,
      });
    }
  }

  async function find(orgId: string, id: string): Promise<EndpointRow> {
    const row = await db
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new KeelError('NOT_FOUND', `No webhook endpoint ${id}`);
    return row;
  }

  return {
    /** Creates an endpoint; its signing secret is in the result once and never again. */
    async createEndpoint(
      orgId: string,
      input: EndpointInput,
    ): Promise<{ endpoint: EndpointRow; secret: string }> {
      checkInput(input);
      const { count } = await db
        .selectFrom('webhook_endpoints')
        .select((eb) => eb.fn.countAll<string>().as('count'))
        .where('org_id', '=', orgId)
        .executeTakeFirstOrThrow();
      if (Number(count) >= MAX_ENDPOINTS_PER_ORG) {
        throw new KeelError('CONFLICT', `An org may have at most ${MAX_ENDPOINTS_PER_ORG} webhook endpoints`);
      }
      const id = runtime.newId('whe');
      const secret = newSecret();
      const now = runtime.clock.now();
      const endpoint = await db
        .insertInto('webhook_endpoints')
        .values({
          org_id: orgId,
          id,
          url: input.url,
          description: input.description ?? '',
          event_types: [...(input.eventTypes ?? [])],
          enabled: true,
          disabled_reason: null,
          ordered: input.ordered ?? false,
          rate_limit_per_second: input.rateLimitPerSecond ?? null,
          secret_sealed: runtime.secretBox.seal(secret, context(id)),
          previous_secret_sealed: null,
          previous_secret_expires_at: null,
          failing_since: null,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return { endpoint, secret };
    },

    async listEndpoints(
      orgId: string,
      options: { cursor?: string; limit: number },
    ): Promise<Page<EndpointRow>> {
      let query = db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId);
      if (options.cursor) query = query.where('id', '>', options.cursor);
      const rows = await query
        .orderBy('id')
        .limit(options.limit + 1)
        .execute();
      return page(rows, options.limit, (row) => row.id);
    },

    getEndpoint: find,

    async updateEndpoint(orgId: string, id: string, patch: EndpointPatch): Promise<EndpointRow> {
      checkInput(patch);
      await find(orgId, id);
      const reenabled = patch.enabled === true;
      return db
        .updateTable('webhook_endpoints')
        .set({
          ...(patch.url !== undefined && { url: patch.url }),
          ...(patch.description !== undefined && { description: patch.description }),
          ...(patch.eventTypes !== undefined && { event_types: [...patch.eventTypes] }),
          ...(patch.ordered !== undefined && { ordered: patch.ordered }),
          ...(patch.rateLimitPerSecond !== undefined && { rate_limit_per_second: patch.rateLimitPerSecond }),
          ...(patch.enabled !== undefined && { enabled: patch.enabled }),
          // Enabling again starts the failure clock afresh.
          ...(reenabled && { disabled_reason: null, failing_since: null }),
          ...(patch.enabled === false && { disabled_reason: 'disabled by a user' }),
          updated_at: runtime.clock.now(),
        })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
    },

    async deleteEndpoint(orgId: string, id: string): Promise<void> {
      await find(orgId, id);
      await runtime.database.transaction(async (tx) => {
        await tx
          .deleteFrom('webhook_deliveries')
          .where('org_id', '=', orgId)
          .where('endpoint_id', '=', id)
          .execute();
        await tx
          .deleteFrom('webhook_attempts')
          .where('org_id', '=', orgId)
          .where('endpoint_id', '=', id)
          .execute();
        await tx.deleteFrom('webhook_endpoints').where('org_id', '=', orgId).where('id', '=', id).execute();
      });
    },

    /**
     * A new secret, shown once. The old one keeps signing beside it (two signatures) until the
     * grace period ends, so receivers can switch without dropping a delivery.
     */
    async rotateSecret(orgId: string, id: string, graceSeconds = DEFAULT_ROTATION_GRACE_SECONDS) {
      const endpoint = await find(orgId, id);
      const secret = newSecret();
      const now = runtime.clock.now();
      const expiresAt = new Date(now.getTime() + graceSeconds * 1000);
      await db
        .updateTable('webhook_endpoints')
        .set({
          secret_sealed: runtime.secretBox.seal(secret, context(id)),
          previous_secret_sealed: graceSeconds > 0 ? endpoint.secret_sealed : null,
          previous_secret_expires_at: graceSeconds > 0 ? expiresAt : null,
          updated_at: now,
        })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .execute();
      return { secret, previousSecretExpiresAt: graceSeconds > 0 ? expiresAt : null };
    },

    /** Queues a `webhook.test` delivery to this endpoint only. */
    async sendTestEvent(orgId: string, id: string): Promise<DeliveryRow> {
      const endpoint = await find(orgId, id);
      const now = runtime.clock.now();
      const event = {
        id: runtime.newId('evt'),
        type: WEBHOOK_TEST.type,
        version: WEBHOOK_TEST.version,
        createdAt: now,
        payload: { endpointId: endpoint.id, message: 'This is a test event from Keel.' },
      };
      const deliveryId = runtime.newId('whd');
      await runtime.database.transaction(async (tx) => {
        await insertDeliveries(tx, [
          {
            org_id: orgId,
            id: deliveryId,
            endpoint_id: endpoint.id,
            event_id: event.id,
            event_type: event.type,
            body: webhookBody(event),
            status: 'pending',
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
          },
        ]);
        await sql`select pg_notify(${DELIVERIES_CHANNEL}, '')`.execute(tx);
      });
      return this.getDelivery(orgId, deliveryId);
    },

    async listDeliveries(
      orgId: string,
      endpointId: string,
      options: { cursor?: string; limit: number; status?: DeliveryStatus },
    ): Promise<Page<DeliveryRow>> {
      await find(orgId, endpointId);
      let query = db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('endpoint_id', '=', endpointId);
      if (options.status) query = query.where('status', '=', options.status);
      if (options.cursor) query = query.where('id', '<', options.cursor);
      const rows = await query
        .orderBy('id', 'desc')
        .limit(options.limit + 1)
        .execute();
      return page(rows, options.limit, (row) => row.id);
    },

    async getDelivery(orgId: string, id: string): Promise<DeliveryRow> {
      const row = await db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new KeelError('NOT_FOUND', `No webhook delivery ${id}`);
      return row;
    },

    async listAttempts(orgId: string, deliveryId: string): Promise<AttemptRow[]> {
      await this.getDelivery(orgId, deliveryId);
      return db
        .selectFrom('webhook_attempts')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('delivery_id', '=', deliveryId)
        .orderBy('attempt')
        .execute();
    },

    /** Sends one delivery again now, whatever its state (a succeeded one is sent once more). */
    async retryDelivery(orgId: string, id: string): Promise<DeliveryRow> {
      const delivery = await this.getDelivery(orgId, id);
      if (delivery.status === 'sending')
        throw new KeelError('CONFLICT', 'This delivery is being sent right now');
      await requeue(sql`org_id = ${orgId} and id = ${id}`);
      return this.getDelivery(orgId, id);
    },

    /** Requeues every failed delivery of the endpoint created since `since`; returns how many. */
    async recover(orgId: string, endpointId: string, since: Date): Promise<number> {
      await find(orgId, endpointId);
      return requeue(
        sql`(org_id, id) in (
              select org_id, id from webhook_deliveries
              where org_id = ${orgId} and endpoint_id = ${endpointId} and status = 'failed' and created_at >= ${since}
              order by created_at limit ${MAX_RECOVER_DELIVERIES})`,
      );
    },
  };

  async function requeue(where: ReturnType<typeof sql>): Promise<number> {
    const now = runtime.clock.now();
    return runtime.database.transaction(async (tx) => {
      // A manual retry gets one fresh attempt: the counter restarts below the schedule's end.
      const result = await sql`
        update webhook_deliveries set status = 'pending', next_attempt_at = ${now}, locked_until = null,
          attempts = 0, updated_at = ${now}
        where ${where}`.execute(tx);
      await sql`select pg_notify(${DELIVERIES_CHANNEL}, '')`.execute(tx);
      return Number(result.numAffectedRows ?? 0n);
    });
  }
}

function page<T>(rows: T[], limit: number, cursorOf: (row: T) => string): Page<T> {
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, nextCursor: more ? cursorOf(data.at(-1)!) : null };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
