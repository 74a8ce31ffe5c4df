// Usage metering overhead: an authenticated route (GET /v1/auth/whoami with an API key:
// authentication, rate limiting and the metering hook, and no database read, so the hook's cost
// is as visible as it can be) on Keel with request metering on (the default) against the same
// build with KEEL_METER_REQUESTS=false. Each side is two `keel start --role api` processes on one
// database, started metered, unmetered, unmetered, metered; every round loads all four in turn,
// in alternating directions (goal: ratio >= 0.95).
//
// The result is throughput per CPU-second of the server process (its user + system time, read
// from /proc, over all rounds): what a core serves, with and without metering. On a shared
// machine wall-clock requests/s swing with whatever else runs, far more than 5 %, while the CPU a
// process spends per request barely does; the wall-clock medians are printed too.
//
// Afterwards the metered processes are stopped with SIGTERM, and the requests they counted are
// checked against what autocannon sent: a graceful shutdown must have flushed every one.
//
// BENCH_METERING_CONTROL=1 runs the same rounds with metering off in all four processes (an A/A
// run): its ratio shows how far from 1 this machine's noise alone moves the result.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import client from 'prom-client';
import { systemClock } from '../server/src/infra/clock.ts';
import { createLogger } from '../server/src/infra/observability/logger.ts';
import { createUsageAggregator } from '../server/src/platform/metering/aggregator.ts';
import {
  type BenchResult,
  benchDatabase,
  freePort,
  json,
  KEEL_BIN,
  keelEnvironment,
  type LoadResult,
  load,
  median,
  progress,
  round,
  type ServerProcess,
  spawnServer,
} from './lib.ts';

/** Concurrent connections autocannon keeps open. */
export const CONNECTIONS = 100;
/** Length of one measured round. */
export const ROUND_SECONDS = 4;
/**
 * Measured rounds per server; the rounds alternate which server goes first. Many short rounds,
 * because the machine is shared: each pair of adjacent rounds sees about the same interference.
 */
export const ROUNDS = 8;
/** Unmeasured load on each server before the rounds, so both run optimised code. */
export const WARMUP_SECONDS = 3;
/** Calls timed, per run, for the in-process cost of counting one request. */
const HOOK_CALLS = 1_000_000;
const HOOK_RUNS = 7;
const PATH = '/v1/auth/whoami';
/** An A/A control run: both processes unmetered, to measure the noise floor. */
const CONTROL = process.env.BENCH_METERING_CONTROL === '1';
/** Limits far above what the bench sends: it measures metering, not rate limiting. */
const UNLIMITED = '1000000000';

/** Linux's USER_HZ: /proc reports CPU times in these ticks. */
const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process has used, all its threads included. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

const describe = (result: LoadResult) =>
  `${Math.round(result.rps)} req/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms (${result.requests} requests)`;

/** Signs up (which makes an org) and creates an API key of it, over HTTP. */
async function createApiKey(baseUrl: string): Promise<{ orgId: string; apiKey: string }> {
  const signedUp = await json(`${baseUrl}/v1/auth/signup`, {
    method: 'POST',
    body: JSON.stringify({
      email: `bench-${randomBytes(4).toString('hex')}@example.com`,
      password: 'bench password 123',
    }),
  });
  const token = signedUp.token as string;
  const created = await json(`${baseUrl}/v1/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'bench', scopes: ['usage:read'] }),
  });
  const whoami = await json(`${baseUrl}${PATH}`, {
    headers: { authorization: `Bearer ${created.secret as string}` },
  });
  return { orgId: whoami.orgId as string, apiKey: created.secret as string };
}

/**
 * Nanoseconds one request's counting costs in process (the aggregator's whole per-request work):
 * the fastest of several runs, the one least disturbed by other processes.
 */
function hookCostNs(): number {
  const aggregator = createUsageAggregator({
    sink: async () => {},
    clock: systemClock,
    log: createLogger({ level: 'silent', pretty: false }),
    registry: new client.Registry(),
    intervalMs: 3_600_000,
  });
  const route = `GET ${PATH}`;
  const keys = Array.from({ length: 8 }, (_, index) => `key_01jd7x8m3q9f2k5v6w7y8z9a0${index}`);
  const costs: number[] = [];
  for (let run = 0; run < HOOK_RUNS; run += 1) {
    const started = process.hrtime.bigint();
    for (let index = 0; index < HOOK_CALLS; index += 1) {
      aggregator.add('org_01jd7x8m3q9f2k5v6w7y8z9a0b', 'api_requests', 'count', keys[index % 8]!, route, 1);
    }
    costs.push(Number(process.hrtime.bigint() - started) / HOOK_CALLS);
  }
  return Math.min(...costs);
}

type Role = 'baseline' | 'measured';

export async function run(): Promise<BenchResult> {
  const database = await benchDatabase();
  const dataDirs: string[] = [];
  const servers: ServerProcess[] = [];
  const start = async (name: string, meterRequests: boolean) => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-metering-'));
    dataDirs.push(dataDir);
    const port = await freePort();
    const server = await spawnServer({
      name,
      args: [KEEL_BIN, 'start', '--role', 'api'],
      env: await keelEnvironment({
        DATABASE_URL: database.url,
        KEEL_DATA_DIR: dataDir,
        PORT: String(port),
        LOG_LEVEL: 'info',
        KEEL_METER_REQUESTS: String(meterRequests),
        KEEL_RATE_LIMIT_IP_PER_MINUTE: UNLIMITED,
        KEEL_RATE_LIMIT_KEY_PER_MINUTE: UNLIMITED,
        KEEL_RATE_LIMIT_ORG_PER_MINUTE: UNLIMITED,
      }),
      port,
      readyPath: '/health/ready',
      stdout: 'discard',
    });
    servers.push(server);
    return server;
  };
  try {
    progress(`database: ${database.description}`);
    const hookNs = hookCostNs();
    progress(
      `in process: counting one request costs ${round(hookNs, 0)} ns (fastest of ${HOOK_RUNS} x ${HOOK_CALLS} calls)`,
    );
    // Two identical processes differ by several per cent on this machine whatever they run (see
    // the control run), with the first started often the slower. So each side gets two
    // processes, started metered, unmetered, unmetered, metered, and every round loads all four:
    // whatever the slots do to each other is shared by both sides.
    const slots: { role: Role; server: ServerProcess }[] = [];
    for (const [index, role] of (['measured', 'baseline', 'baseline', 'measured'] as const).entries()) {
      const meterRequests = role === 'measured' && !CONTROL;
      slots.push({
        role,
        server: await start(`keel-${role === 'measured' ? 'metered' : 'unmetered'}-${index}`, meterRequests),
      });
    }
    const { orgId, apiKey } = await createApiKey(slots[0]!.server.url);
    progress(
      `4 x keel --role api (${CONTROL ? 'CONTROL RUN: metering off in all' : 'metered, unmetered, unmetered, metered'}); ` +
        `GET ${PATH} with an API key, LOG_LEVEL=info, stdout to /dev/null`,
    );

    const cpu = { baseline: { seconds: 0, requests: 0 }, measured: { seconds: 0, requests: 0 } };
    let sentToMetered = 0;
    let answeredByMetered = 0;
    for (const slot of slots) {
      const warm = await load(`${slot.server.url}${PATH}`, {
        connections: CONNECTIONS,
        durationSec: WARMUP_SECONDS,
        headers: { authorization: `Bearer ${apiKey}` },
      });
      if (slot.role === 'measured') {
        sentToMetered += warm.sent;
        answeredByMetered += warm.requests;
      }
      progress(`warm-up ${slot.server.name}: ${describe(warm)}`);
    }
    const results: Record<Role, LoadResult[]> = { baseline: [], measured: [] };
    for (let index = 0; index < ROUNDS; index++) {
      // Alternate the direction each round, so no slot always follows the same one.
      const order = index % 2 === 0 ? slots : [...slots].reverse();
      for (const slot of order) {
        const pid = slot.server.child.pid!;
        const cpuBefore = cpuSeconds(pid);
        const result = await load(`${slot.server.url}${PATH}`, {
          connections: CONNECTIONS,
          durationSec: ROUND_SECONDS,
          headers: { authorization: `Bearer ${apiKey}` },
        });
        const cpuUsed = cpuSeconds(pid) - cpuBefore;
        cpu[slot.role].seconds += cpuUsed;
        cpu[slot.role].requests += result.requests;
        results[slot.role].push(result);
        if (slot.role === 'measured') {
          sentToMetered += result.sent;
          answeredByMetered += result.requests;
        }
        progress(
          `round ${index + 1}/${ROUNDS} ${slot.server.name}: ${describe(result)}, ` +
            `${round((cpuUsed * 1e6) / result.requests, 1)} CPU-µs/request`,
        );
      }
    }

    // SIGTERM: each metered process drains HTTP, then flushes what it counted since its last flush.
    for (const slot of slots) if (slot.role === 'measured') await slot.server.stop();
    if (!CONTROL) {
      const counter = new pg.Client({ connectionString: database.url });
      await counter.connect();
      const { rows } = await counter.query<{ count: string | null }>(
        `select sum(event_count)::text as count from usage_hourly where org_id = $1 and meter = 'api_requests' and route = $2`,
        [orgId, `GET ${PATH}`],
      );
      await counter.end();
      // The key check in createApiKey is one more metered request of this route.
      const counted = Number(rows[0]?.count ?? 0) - 1;
      const consistent = counted >= answeredByMetered && counted <= sentToMetered;
      progress(
        `metered processes counted ${counted} requests; autocannon sent ${sentToMetered} and got ${answeredByMetered} ` +
          `answers (${consistent ? 'consistent: none lost' : 'MISMATCH'})`,
      );
      if (!consistent) {
        throw new Error(
          `metering lost or invented requests: counted ${counted}, answered ${answeredByMetered}, sent ${sentToMetered}`,
        );
      }
    }

    const perCpuSecond = (role: 'baseline' | 'measured') => cpu[role].requests / cpu[role].seconds;
    const wallBaseline = median(results.baseline.map((result) => result.rps));
    const wallValue = median(results.measured.map((result) => result.rps));
    // Each round's two runs are adjacent in time: their ratio cancels slow drift in the load
    // other processes put on the machine.
    const pairedRatio = median(
      results.measured.map((result, index) => result.rps / results.baseline[index]!.rps),
    );
    const summary: BenchResult = {
      bench: 'metering',
      metric: 'metered_authenticated_requests_per_cpu_second',
      value: round(perCpuSecond('measured'), 0),
      unit: 'req/cpu-s',
      baseline: round(perCpuSecond('baseline'), 0),
      ratio: round(perCpuSecond('measured') / perCpuSecond('baseline'), 3),
      p50_ms: round(median(results.measured.map((result) => result.p50_ms))),
      p99_ms: round(median(results.measured.map((result) => result.p99_ms))),
    };
    progress(
      `wall clock, median of ${ROUNDS} rounds x ${ROUND_SECONDS} s, ${CONNECTIONS} connections: metered ` +
        `${round(wallValue, 0)} req/s, unmetered ${round(wallBaseline, 0)} req/s: ratio ${round(wallValue / wallBaseline, 3)}; ` +
        `median of the per-round ratios ${round(pairedRatio, 3)}`,
    );
    progress(
      `counting costs ${round(hookNs, 0)} ns per request: ${round((hookNs * wallBaseline) / 1e7, 2)} % of one core ` +
        `at ${round(wallBaseline, 0)} req/s`,
    );
    progress(
      `per CPU-second of the server: metered ${summary.value} requests (${cpu.measured.requests} in ` +
        `${round(cpu.measured.seconds, 2)} s), unmetered ${summary.baseline} (${cpu.baseline.requests} in ` +
        `${round(cpu.baseline.seconds, 2)} s): ratio ${summary.ratio} (goal >= 0.95)`,
    );
    return summary;
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await database.close();
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}
