import { sql } from 'kysely';
import pg from 'pg';
import client from 'prom-client';
import type { Runtime } from '../../infra/runtime.ts';
import { EVENTS_CHANNEL, type EventsService } from '../events/index.ts';
import { decide, shouldDisable } from './domain/retry.ts';
import { WEBHOOK_ENDPOINT_DISABLED } from './events.ts';
import type { Sender } from './sender.ts';
import {
  type ClaimedDelivery,
  claimDueDeliveries,
  clearFailing,
  type DeliveryResult,
  disableEndpoint,
  enabledEndpointsOf,
  insertDeliveries,
  markFailing,
  recordResults,
} from './store.ts';

/** Deliveries one process has in flight at once. */
export const DISPATCH_CONCURRENCY = 256;
/** Deliveries one endpoint may have in flight in one process, so a slow one cannot take every slot. */
export const PER_ENDPOINT_IN_FLIGHT = 32;
/** Deliveries claimed per query. */
export const CLAIM_BATCH = 128;
/** A claimed delivery whose worker vanished is claimed again after this long. */
export const DELIVERY_LEASE_MS = 45_000;
/** Fallback polling when no notification arrives (retries fall due without one). */
export const IDLE_POLL_MS = 250;
/** Events fanned out per transaction. */
export const FANOUT_BATCH = 500;
/** Results are written in batches: after this many, or this long after the first. */
export const RESULT_FLUSH_BATCH = 500;
export const RESULT_FLUSH_MS = 5;
/** How long `stop` waits for in-flight deliveries before leaving them to the lease. */
export const STOP_DRAIN_MS = 16_000;
export const DELIVERIES_CHANNEL = 'keel_webhook_deliveries';
export const FANOUT_CONSUMER = 'webhooks';
const ATTEMPTS_METRIC = 'keel_webhook_attempts_total';

/** Wakes a sleeping loop early. */
class Wakeup {
  private resolve: (() => void) | undefined;
  private pending = false;
  wake() {
    this.pending = true;
    this.resolve?.();
  }
  async sleep(ms: number) {
    if (this.pending) {
      this.pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.resolve = undefined;
    this.pending = false;
  }
}

export interface DispatcherDeps {
  readonly runtime: Runtime;
  readonly events: EventsService;
  readonly sender: Sender;
  /** Tells an org's owners and admins that an endpoint was disabled (email). */
  readonly notifyOrgAdmins?: (orgId: string, subject: string, text: string) => Promise<void>;
  readonly random?: () => number;
}

export function webhookBody(event: {
  id: string;
  type: string;
  version: number;
  createdAt: Date;
  payload: unknown;
}) {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    version: event.version,
    createdAt: event.createdAt.toISOString(),
    data: event.payload,
  });
}

/**
 * Turns events into deliveries (fan-out) and deliveries into signed HTTP requests. Any number
 * of worker processes may run it: fan-out is serialised by a row lock on its cursor, and
 * deliveries are claimed with SKIP LOCKED under a lease.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { runtime, events, sender } = deps;
  const { db } = runtime.database;
  const log = runtime.log.child({ component: 'webhooks' });
  const random = deps.random ?? Math.random;
  const secretCache = new Map<string, string>();
  const inFlight = new Map<string, Promise<void>>();
  const perEndpoint = new Map<string, number>();
  const results: DeliveryResult[] = [];
  const fanoutWakeup = new Wakeup();
  const deliveryWakeup = new Wakeup();
  let running = false;
  let listener: pg.Client | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const loops: Promise<void>[] = [];
  const attemptsCounter =
    (runtime.metrics.registry.getSingleMetric(ATTEMPTS_METRIC) as client.Counter<'outcome'> | undefined) ??
    new client.Counter({
      name: ATTEMPTS_METRIC,
      help: 'Webhook delivery attempts by outcome: succeeded, retry, failed, endpoint_gone.',
      labelNames: ['outcome'] as const,
      registers: [runtime.metrics.registry],
    });

  const open = (sealed: string, endpointId: string) => {
    let secret = secretCache.get(sealed);
    if (!secret) {
      secret = runtime.secretBox.open(sealed, `webhook_endpoint:${endpointId}`);
      secretCache.set(sealed, secret);
    }
    return secret;
  };

  async function fanoutOnce(): Promise<number> {
    return runtime.database.transaction(async (tx) => {
      const { rows } = await sql<{ cursor: string | null }>`
        select cursor from event_consumers where name = ${FANOUT_CONSUMER} for update skip locked`.execute(
        tx,
      );
      if (rows.length === 0) return 0; // Another worker is fanning out.
      const batch = await events.readAll({ after: rows[0]!.cursor ?? undefined, limit: FANOUT_BATCH });
      if (batch.length === 0) return 0;
      const endpoints = await enabledEndpointsOf(tx, [...new Set(batch.map((event) => event.orgId))]);
      const now = runtime.clock.now();
      const deliveries = batch.flatMap((event) =>
        endpoints
          .filter(
            (e) =>
              e.org_id === event.orgId &&
              // An endpoint receives what happens after it exists, not the backlog before it.
              event.createdAt >= e.created_at &&
              (e.event_types.length === 0 || e.event_types.includes(event.type)),
          )
          .map((endpoint) => ({
            org_id: event.orgId,
            id: runtime.newId('whd'),
            endpoint_id: endpoint.id,
            event_id: event.id,
            event_type: event.type,
            body: webhookBody(event),
            status: 'pending' as const,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
          })),
      );
      await insertDeliveries(tx, deliveries);
      await sql`update event_consumers set cursor = ${batch.at(-1)!.cursor}, updated_at = ${now}
                where name = ${FANOUT_CONSUMER}`.execute(tx);
      if (deliveries.length > 0) await sql`select pg_notify(${DELIVERIES_CHANNEL}, '')`.execute(tx);
      return batch.length;
    });
  }

  async function fanoutLoop() {
    await sql`insert into event_consumers (name) values (${FANOUT_CONSUMER}) on conflict do nothing`.execute(
      db,
    );
    while (running) {
      try {
        const read = await fanoutOnce();
        if (read === FANOUT_BATCH) continue;
        if (read > 0) deliveryWakeup.wake();
      } catch (error) {
        log.error({ err: error }, 'webhook fan-out failed; retrying');
      }
      await fanoutWakeup.sleep(IDLE_POLL_MS);
    }
  }

  function scheduleFlush() {
    if (results.length >= RESULT_FLUSH_BATCH) {
      void flush();
    } else if (!flushTimer) {
      flushTimer = setTimeout(() => void flush(), RESULT_FLUSH_MS);
    }
  }

  function flush(): Promise<void> {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    flushing = flushing.then(async () => {
      const batch = results.splice(0, results.length);
      if (batch.length === 0) return;
      try {
        await writeResults(batch);
      } catch (error) {
        // The leases of these deliveries will run out and they will be sent again: receivers
        // deduplicate on webhook-id, so a repeat is safe, a loss would not be.
        log.error({ err: error, results: batch.length }, 'could not record webhook results');
      }
    });
    return flushing;
  }

  async function writeResults(batch: DeliveryResult[]) {
    const now = runtime.clock.now();
    const key = (r: { orgId: string; endpointId: string }) => `${r.orgId}/${r.endpointId}`;
    const succeeded = new Map<string, { orgId: string; id: string }>();
    const failedEndpoints = new Map<string, { orgId: string; id: string }>();
    const gone = new Map<string, { orgId: string; id: string }>();
    for (const result of batch) {
      const endpoint = { orgId: result.orgId, id: result.endpointId };
      if (result.status === 'succeeded') succeeded.set(key(result), endpoint);
      else if (result.attempt) failedEndpoints.set(key(result), endpoint);
      if (result.responseStatus === 410) gone.set(key(result), endpoint);
    }
    for (const k of succeeded.keys()) failedEndpoints.delete(k);
    const disabled: { orgId: string; id: string; reason: string }[] = [];
    await runtime.database.transaction(async (tx) => {
      await recordResults(tx, batch, now);
      await clearFailing(tx, [...succeeded.values()]);
      for (const state of await markFailing(tx, [...failedEndpoints.values()], now)) {
        if (state.enabled && shouldDisable(state.failing_since, now)) {
          disabled.push({ orgId: state.org_id, id: state.id, reason: 'failing for 5 days' });
        }
      }
      for (const endpoint of gone.values())
        disabled.push({ ...endpoint, reason: 'the receiver answered 410 Gone' });
      for (const endpoint of disabled) {
        if (await disableEndpoint(tx, endpoint.orgId, endpoint.id, endpoint.reason, now)) {
          await events.emit(tx, endpoint.orgId, [
            {
              type: WEBHOOK_ENDPOINT_DISABLED.type,
              payload: { endpointId: endpoint.id, reason: endpoint.reason },
            },
          ]);
        }
      }
    });
    for (const endpoint of disabled) {
      log.warn(
        { orgId: endpoint.orgId, endpointId: endpoint.id, reason: endpoint.reason },
        'webhook endpoint disabled',
      );
      await deps
        .notifyOrgAdmins?.(
          endpoint.orgId,
          'A webhook endpoint was disabled',
          `Keel disabled webhook endpoint ${endpoint.id}: ${endpoint.reason}. Fix the receiver, enable the endpoint again, and recover the failed messages.`,
        )
        .catch((error) => log.error({ err: error }, 'could not notify org admins'));
    }
  }

  async function deliver(delivery: ClaimedDelivery): Promise<void> {
    const now = runtime.clock.now();
    if (delivery.rate_limit_per_second) {
      const second = Math.floor(now.getTime() / 1000);
      const sent = await runtime.kv.increment(`webhooks:rate:${delivery.endpoint_id}:${second}`, 1, 2_000);
      if (sent > delivery.rate_limit_per_second) {
        results.push({
          orgId: delivery.org_id,
          deliveryId: delivery.id,
          endpointId: delivery.endpoint_id,
          status: 'pending',
          attempts: delivery.attempts - 1,
          nextAttemptAt: new Date((second + 1) * 1000),
          responseStatus: null,
          attempt: undefined,
        });
        return scheduleFlush();
      }
    }
    const secrets = [open(delivery.secret_sealed, delivery.endpoint_id)];
    if (
      delivery.previous_secret_sealed &&
      delivery.previous_secret_expires_at &&
      delivery.previous_secret_expires_at > now
    ) {
      secrets.push(open(delivery.previous_secret_sealed, delivery.endpoint_id));
    }
    const outcome = await sender.send({
      url: delivery.url,
      messageId: delivery.event_id,
      body: delivery.body,
      secrets,
      timestamp: now,
    });
    const finishedAt = runtime.clock.now();
    const decision = decide(outcome, delivery.attempts, finishedAt, random);
    results.push({
      orgId: delivery.org_id,
      deliveryId: delivery.id,
      endpointId: delivery.endpoint_id,
      status: decision.kind === 'succeeded' ? 'succeeded' : decision.kind === 'retry' ? 'pending' : 'failed',
      attempts: delivery.attempts,
      nextAttemptAt:
        decision.kind === 'retry' ? new Date(finishedAt.getTime() + decision.delayMs) : finishedAt,
      responseStatus: outcome.status ?? null,
      attempt: {
        id: runtime.newId('wha'),
        attempt: delivery.attempts,
        started_at: now,
        duration_ms: outcome.durationMs,
        response_status: outcome.status ?? null,
        response_excerpt: outcome.excerpt ?? null,
        error: outcome.error ?? null,
      },
    });
    attemptsCounter.inc({ outcome: decision.kind });
    scheduleFlush();
  }

  async function deliveryLoop() {
    while (running) {
      let claimed: ClaimedDelivery[] = [];
      const free = DISPATCH_CONCURRENCY - inFlight.size;
      if (free > 0) {
        try {
          const saturated = [...perEndpoint].filter(([, n]) => n >= PER_ENDPOINT_IN_FLIGHT).map(([id]) => id);
          claimed = await claimDueDeliveries(db, {
            now: runtime.clock.now(),
            leaseMs: DELIVERY_LEASE_MS,
            limit: Math.min(free, CLAIM_BATCH),
            perEndpoint: PER_ENDPOINT_IN_FLIGHT,
            excludeEndpoints: saturated,
          });
        } catch (error) {
          log.error({ err: error }, 'could not claim webhook deliveries; retrying');
        }
        for (const delivery of claimed) {
          perEndpoint.set(delivery.endpoint_id, (perEndpoint.get(delivery.endpoint_id) ?? 0) + 1);
          const task = deliver(delivery)
            .catch((error) => log.error({ err: error, deliveryId: delivery.id }, 'webhook delivery crashed'))
            .finally(() => {
              inFlight.delete(delivery.id);
              const left = (perEndpoint.get(delivery.endpoint_id) ?? 1) - 1;
              if (left <= 0) perEndpoint.delete(delivery.endpoint_id);
              else perEndpoint.set(delivery.endpoint_id, left);
              deliveryWakeup.wake();
            });
          inFlight.set(delivery.id, task);
        }
      }
      if (claimed.length === 0 || free <= claimed.length) await deliveryWakeup.sleep(IDLE_POLL_MS);
    }
  }

  return {
    /** Fans out whatever the stream holds now; for tests and tools. */
    fanoutOnce,
    async start() {
      running = true;
      listener = new pg.Client({ connectionString: runtime.config.database.url });
      listener.on('error', (error) => log.warn({ err: error }, 'webhook listener connection failed'));
      listener.on('notification', (message) => {
        if (message.channel === EVENTS_CHANNEL) fanoutWakeup.wake();
        else deliveryWakeup.wake();
      });
      try {
        await listener.connect();
        await listener.query(`listen ${EVENTS_CHANNEL}`);
        await listener.query(`listen ${DELIVERIES_CHANNEL}`);
      } catch (error) {
        // Without notifications the loops still poll; delivery is slower, never lost.
        log.warn({ err: error }, 'webhook listener unavailable: polling only');
      }
      loops.push(fanoutLoop(), deliveryLoop());
      log.info('webhook dispatcher started');
    },
    async stop() {
      running = false;
      fanoutWakeup.wake();
      deliveryWakeup.wake();
      await Promise.all(loops);
      const drained = Promise.all(inFlight.values());
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, STOP_DRAIN_MS).unref())]);
      await flush();
      await listener?.end().catch(() => {});
      sender.close();
      log.info('webhook dispatcher stopped');
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
