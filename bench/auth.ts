// Authentication and rate limiting on the hot path: requests/s of GET /v1/auth/whoami with an API
// key, on `keel start --role api` with REDIS_URL, against a bare Fastify 5 route in the same run.
// The route does nothing but authenticate (key cache, no Postgres per request) and rate-limit
// (Redis, key + org limits checked atomically), then answer from the verified key.
//
// Two Keel processes share the database and Redis:
// - local (KEEL_RATE_LIMIT_MODE=local): units leased from Redis in batches; the result line.
// - exact (KEEL_RATE_LIMIT_MODE=exact): one atomic Lua call per request; reported as `exact`.
// Rounds rotate the order of the targets and the medians are reported. Keel's own /health/live
// (its pipeline without authentication) is measured too, to tell the cost of the pipeline from
// the cost of authentication and limits. Each round also records the server's CPU time per
// request, which the shared machine's other load barely moves.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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
  REPO_ROOT,
  round,
  type ServerProcess,
  spawnServer,
} from './lib.ts';

/** Concurrent connections autocannon keeps open (the goal is stated at 100). */
export const CONNECTIONS = 100;
/** Length of one measured round. */
export const ROUND_SECONDS = 5;
/** Measured rounds per server; each round rotates which server goes first. */
export const ROUNDS = 3;
/** Unmeasured load on each server before the rounds, so all run optimised code. */
export const WARMUP_SECONDS = 3;
/** Limits far above what the bench can send: every request is admitted and still checked. */
const UNLIMITED = '1000000000';
const MEASURED_PATH = '/v1/auth/whoami';
const BASELINE_PATH = '/health/live';

type Target = 'baseline' | 'pipeline' | 'local' | 'exact';
const LABELS: Record<Target, string> = {
  baseline: 'bare fastify',
  pipeline: 'keel /health/live (pipeline, no auth: diagnostic)',
  local: 'keel, local-first limits',
  exact: 'keel, exact limits (1 Redis call/request)',
};

type Round = LoadResult & { cpuMicrosPerRequest: number };

const describe = (result: LoadResult | Round) =>
  `${Math.round(result.rps)} req/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms (${result.requests} requests)` +
  ('cpuMicrosPerRequest' in result
    ? `, server CPU ${Math.round(result.cpuMicrosPerRequest)} µs/request`
    : '');

/** CPU time (user + system) a process has used, in µs, from /proc (Linux). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND;
}
/** USER_HZ: 100 on every Linux Keel runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export async function run(): Promise<
  BenchResult & { exact: Omit<BenchResult, 'bench' | 'metric' | 'unit'> }
> {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error('bench auth measures rate limiting through Redis: set REDIS_URL');
  const database = await benchDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-auth-'));
  const servers: ServerProcess[] = [];
  try {
    progress(`database: ${database.description}; Redis: ${new URL(redisUrl).host}`);
    const barePort = await freePort();
    const bare = await spawnServer({
      name: 'bare-fastify',
      args: ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'fixtures', 'bare-fastify.ts')],
      env: { ...process.env, PORT: String(barePort) },
      port: barePort,
      readyPath: BASELINE_PATH,
      stdout: 'discard',
    });
    servers.push(bare);
    const keel: Partial<Record<Target, ServerProcess>> = {};
    // One after the other: the first applies the migrations.
    for (const mode of ['local', 'exact'] as const) {
      const port = await freePort();
      keel[mode] = await spawnServer({
        name: `keel-${mode}`,
        args: [KEEL_BIN, 'start', '--role', 'api'],
        env: await keelEnvironment({
          DATABASE_URL: database.url,
          REDIS_URL: redisUrl,
          KEEL_DATA_DIR: dataDir,
          PORT: String(port),
          LOG_LEVEL: 'info',
          KEEL_RATE_LIMIT_MODE: mode,
          KEEL_RATE_LIMIT_KEY_PER_MINUTE: UNLIMITED,
          KEEL_RATE_LIMIT_ORG_PER_MINUTE: UNLIMITED,
        }),
        port,
        readyPath: '/health/ready',
        stdout: 'discard',
      });
      servers.push(keel[mode]!);
    }

    // An org, and a key of it, made through the API like a user would.
    const signedUp = await json(`${keel.local!.url}/v1/auth/signup`, {
      method: 'POST',
      body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'benchmark password' }),
    });
    const created = await json(`${keel.local!.url}/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${signedUp.token}` },
      body: JSON.stringify({ name: 'bench', scopes: ['org:read'] }),
    });
    const keyHeaders = { authorization: `Bearer ${created.secret as string}` };
    progress(`bare Fastify on ${bare.url}; keel local ${keel.local!.url}; keel exact ${keel.exact!.url}`);

    const urls: Record<Target, string> = {
      baseline: `${bare.url}${BASELINE_PATH}`,
      pipeline: `${keel.local!.url}${BASELINE_PATH}`,
      local: `${keel.local!.url}${MEASURED_PATH}`,
      exact: `${keel.exact!.url}${MEASURED_PATH}`,
    };
    const headersOf = (target: Target) => (target === 'baseline' || target === 'pipeline' ? {} : keyHeaders);
    const targets: Target[] = ['baseline', 'pipeline', 'local', 'exact'];
    for (const target of targets) {
      const warm = await load(urls[target], {
        connections: CONNECTIONS,
        durationSec: WARMUP_SECONDS,
        headers: headersOf(target),
      });
      progress(`warm-up ${LABELS[target]}: ${describe(warm)}`);
    }
    const processes: Record<Target, ServerProcess> = {
      baseline: bare,
      pipeline: keel.local!,
      local: keel.local!,
      exact: keel.exact!,
    };
    const results: Record<Target, Round[]> = { baseline: [], pipeline: [], local: [], exact: [] };
    for (let index = 0; index < ROUNDS; index++) {
      const order = [...targets.slice(index % targets.length), ...targets.slice(0, index % targets.length)];
      for (const target of order) {
        // The machine is shared: CPU time per request is a figure that other load barely moves.
        const pid = processes[target].child.pid!;
        const cpuBefore = cpuMicros(pid);
        const loaded = await load(urls[target], {
          connections: CONNECTIONS,
          durationSec: ROUND_SECONDS,
          headers: headersOf(target),
        });
        const result = { ...loaded, cpuMicrosPerRequest: (cpuMicros(pid) - cpuBefore) / loaded.requests };
        results[target].push(result);
        progress(`round ${index + 1}/${ROUNDS} ${LABELS[target]}: ${describe(result)}`);
      }
    }

    const rps = (target: Target) => median(results[target].map((result) => result.rps));
    const p50 = (target: Target) => round(median(results[target].map((result) => result.p50_ms)));
    const p99 = (target: Target) => round(median(results[target].map((result) => result.p99_ms)));
    const cpu = (target: Target) =>
      round(median(results[target].map((result) => result.cpuMicrosPerRequest)), 0);
    const baseline = rps('baseline');
    const summary = {
      bench: 'auth',
      metric: 'keel_api_key_rate_limited_requests_per_second',
      value: round(rps('local'), 0),
      unit: 'req/s',
      baseline: round(baseline, 0),
      ratio: round(rps('local') / baseline, 3),
      p50_ms: p50('local'),
      p99_ms: p99('local'),
      exact: {
        value: round(rps('exact'), 0),
        baseline: round(baseline, 0),
        ratio: round(rps('exact') / baseline, 3),
        p50_ms: p50('exact'),
        p99_ms: p99('exact'),
      },
    };
    progress(
      `median of ${ROUNDS} rounds x ${ROUND_SECONDS} s, ${CONNECTIONS} connections; bare Fastify ${summary.baseline} req/s ` +
        `(p50 ${p50('baseline')} ms, p99 ${p99('baseline')} ms, ${cpu('baseline')} µs CPU/request)`,
    );
    progress(
      `local-first: ${summary.value} req/s, ratio ${summary.ratio}, p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms ` +
        `(goal: ratio >= 0.75, p99 < 10 ms); ${cpu('local')} µs CPU/request`,
    );
    progress(
      `exact: ${summary.exact.value} req/s, ratio ${summary.exact.ratio}, p50 ${summary.exact.p50_ms} ms, ` +
        `p99 ${summary.exact.p99_ms} ms; ${cpu('exact')} µs CPU/request`,
    );
    progress(
      `CPU per request, the figure least moved by other load on this machine: bare ${cpu('baseline')} µs, ` +
        `keel pipeline without auth ${cpu('pipeline')} µs (${round(rps('pipeline'), 0)} req/s), ` +
        `local ${cpu('local')} µs, exact ${cpu('exact')} µs`,
    );
    return summary;
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
