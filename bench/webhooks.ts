// Webhook delivery throughput and latency.
//
// One Keel dispatcher (in this process) delivers to a local receiver (its own process) on
// 127.0.0.1. Two phases:
//   1. throughput: a backlog of events is emitted at once; deliveries/s until the last arrives;
//   2. latency: events emitted at a steady rate well below capacity; event → delivery p50/p99.
// Baseline, same run: plain signed POSTs from this process to the same receiver, at the same
// concurrency, with no database: the ceiling the dispatcher can approach.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Type } from 'typebox';
import { configWith } from '../server/src/config.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../server/src/infra/db/embedded.ts';
import { migrate } from '../server/src/infra/db/migrate.ts';
import { createSsrfGuard } from '../server/src/infra/http/ssrf.ts';
import { createLogger } from '../server/src/infra/observability/logger.ts';
import { createRuntime } from '../server/src/infra/runtime.ts';
import { createEventsService, defineEvent } from '../server/src/platform/events/index.ts';
import { createDispatcher, DISPATCH_CONCURRENCY } from '../server/src/platform/webhooks/dispatcher.ts';
import { createSender, signatureHeaders } from '../server/src/platform/webhooks/sender.ts';
import { createWebhooksService } from '../server/src/platform/webhooks/service.ts';

/** Events in the throughput backlog. */
const BACKLOG_EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 10_000);
/** Orgs (one endpoint each) the events are spread over. */
const ORGS = 10;
/** Events per emitting transaction in the backlog phase. */
const EMIT_BATCH = 100;
/** Steady rate and duration of the latency phase. */
const LATENCY_RATE_PER_SECOND = 200;
const LATENCY_SECONDS = 5;
const BASELINE_REQUESTS = 10_000;
const BASELINE_CONCURRENCY = 64;

const log = createLogger({ level: 'warn', pretty: false, name: 'bench' });

const PING = defineEvent({
  type: 'bench.ping',
  version: 1,
  description: 'Benchmark event.',
  payload: Type.Object({ n: Type.Integer(), sentAtMs: Type.Number() }),
});

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function startReceiver() {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures/webhook-receiver.ts')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim()))),
  );
  const agent = new http.Agent({ keepAlive: true });
  const call = (method: string, url: string) =>
    new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: url, method, agent }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    stats: async () =>
      JSON.parse(await call('GET', '/stats')) as { createdAtMs: number; arrivedAtMs: number }[],
    reset: () => call('POST', '/reset'),
    stop: () => {
      agent.destroy();
      child.kill('SIGTERM');
    },
  };
}

async function baseline(receiverUrl: string, reset: () => Promise<string>) {
  await reset();
  const sender = createSender(createSsrfGuard({ allow: ['127.0.0.1'] }));
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: BASELINE_CONCURRENCY }, async () => {
      while (next < BASELINE_REQUESTS) {
        const n = next++;
        const body = JSON.stringify({
          id: `evt_${n}`,
          type: 'bench.ping',
          createdAt: new Date().toISOString(),
          data: { n, sentAtMs: Date.now() },
        });
        await sender.send({
          url: receiverUrl,
          messageId: `evt_${n}`,
          body,
          secrets: [secret],
          timestamp: new Date(),
        });
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  sender.close();
  // Signing alone, for the record: it is part of both paths.
  void signatureHeaders;
  return BASELINE_REQUESTS / seconds;
}

export async function run() {
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  const adminUrl = process.env.DATABASE_URL
    ? process.env.DATABASE_URL
    : await (async () => {
        dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-'));
        embedded = await startEmbeddedPostgres({ dataDir, log });
        return embedded.adminUrl;
      })();
  const dbName = `keel_bench_webhooks_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const receiver = await startReceiver();
  try {
    const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
    await migrate(pool, log);
    await pool.end();
    const config = configWith({
      database: { url: url.toString(), poolSize: 20, migrateOnStart: false },
      log: { level: 'warn', pretty: false },
      masterKey: randomBytes(32).toString('hex'),
      webhooks: { ssrfAllowlist: ['127.0.0.1'] },
    });
    const runtime = await createRuntime(config, { log });
    const events = createEventsService({
      db: runtime.database.db,
      clock: runtime.clock,
      newId: runtime.newId,
    });
    const guard = createSsrfGuard({ allow: ['127.0.0.1'] });
    const webhooks = createWebhooksService({ runtime, guard });
    const orgs = Array.from({ length: ORGS }, () => runtime.newId('org'));
    for (const org of orgs) await webhooks.createEndpoint(org, { url: receiver.url });
    const dispatcher = createDispatcher({ runtime, events, sender: createSender(guard) });
    await dispatcher.start();

    const emit = async (org: string, count: number, first: number) => {
      await runtime.database.transaction((tx) =>
        events.emit(
          tx,
          org,
          Array.from({ length: count }, (_, i) => ({
            type: PING.type,
            payload: { n: first + i, sentAtMs: Date.now() },
          })),
        ),
      );
    };
    const waitForArrivals = async (count: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const arrivals = await receiver.stats();
        if (arrivals.length >= count || Date.now() > deadline) return arrivals;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    // 1. Throughput: emit a backlog as fast as the database takes it; time until the last arrives.
    process.stdout.write(`# throughput: ${BACKLOG_EVENTS} events over ${ORGS} endpoints\n`);
    await receiver.reset();
    const startedAt = Date.now();
    for (let n = 0; n < BACKLOG_EVENTS; n += EMIT_BATCH) {
      await emit(orgs[(n / EMIT_BATCH) % ORGS]!, Math.min(EMIT_BATCH, BACKLOG_EVENTS - n), n);
    }
    const emittedAt = Date.now();
    const arrivals = await waitForArrivals(BACKLOG_EVENTS, 120_000);
    const lastArrival = Math.max(...arrivals.map((a) => a.arrivedAtMs));
    const throughput = arrivals.length / ((lastArrival - startedAt) / 1000);
    process.stdout.write(
      `#   delivered ${arrivals.length}/${BACKLOG_EVENTS} in ${lastArrival - startedAt} ms (emitting took ${emittedAt - startedAt} ms): ${throughput.toFixed(0)} deliveries/s\n`,
    );

    // 2. Latency at a steady rate below capacity.
    process.stdout.write(`# latency: ${LATENCY_RATE_PER_SECOND} events/s for ${LATENCY_SECONDS} s\n`);
    await receiver.reset();
    const total = LATENCY_RATE_PER_SECOND * LATENCY_SECONDS;
    const tickMs = 50;
    const perTick = (LATENCY_RATE_PER_SECOND * tickMs) / 1000;
    const latencyStart = Date.now();
    for (let n = 0; n < total; n += perTick) {
      const due = latencyStart + (n / perTick) * tickMs;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await emit(orgs[(n / perTick) % ORGS]!, perTick, n);
    }
    const paced = await waitForArrivals(total, 60_000);
    const latencies = paced.map((a) => a.arrivedAtMs - a.createdAtMs).sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    process.stdout.write(
      `#   event → delivery p50 ${p50} ms, p99 ${p99} ms (${paced.length}/${total} delivered)\n`,
    );

    await dispatcher.stop();
    await runtime.close();

    // 3. Baseline: the same receiver, plain signed POSTs, no database.
    const ceiling = await baseline(receiver.url, receiver.reset);
    process.stdout.write(
      `# baseline: ${ceiling.toFixed(0)} signed POSTs/s at concurrency ${BASELINE_CONCURRENCY} (dispatcher concurrency ${DISPATCH_CONCURRENCY})\n`,
    );
    return {
      bench: 'webhooks',
      metric: 'deliveries_per_second',
      value: Math.round(throughput),
      unit: 'deliveries/s',
      baseline: Math.round(ceiling),
      ratio: Math.round((throughput / ceiling) * 1000) / 1000,
      p50_ms: p50,
      p99_ms: p99,
    };
  } finally {
    receiver.stop();
    await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
    await admin.end();
    await embedded?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
