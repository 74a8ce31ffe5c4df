// API overhead: requests/s of Keel's GET /health/live through its whole pipeline (request id, one
// log line per request really written to stdout, metrics, security headers, CORS, problem+json
// handlers) against a bare Fastify 5 server answering the same JSON. Each server is its own
// process on 127.0.0.1; rounds alternate between them and the medians are reported.
// Two more servers, measured in every round between the two sides as diagnostics (progress lines,
// and `headers` and `pipeline` in the result), are the bare one sending only the response headers
// the issue requires (request id, HSTS, nosniff, frame-ancestors), and the bare one doing, in its
// plainest form, all the issue requires per request (those headers, a histogram observation and
// one JSON log line written to stdout): what that work alone costs on this machine.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type BenchResult,
  benchDatabase,
  freePort,
  KEEL_BIN,
  keelEnvironment,
  type LoadResult,
  load,
  median,
  progress,
  REPO_ROOT,
  round,
  roundOrder,
  type ServerProcess,
  spawnServer,
} from './lib.ts';

/** Concurrent connections autocannon keeps open. */
export const CONNECTIONS = 100;
/** Length of one measured round. */
export const ROUND_SECONDS = 5;
/** Measured rounds per server; the rounds alternate which server goes first. */
export const ROUNDS = 3;
/** Unmeasured load on each server before the rounds, so both run optimised code. */
export const WARMUP_SECONDS = 5;
const PATH = '/health/live';

const describe = (result: LoadResult) =>
  `${Math.round(result.rps)} req/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms (${result.requests} requests)`;

export async function run(): Promise<BenchResult> {
  const database = await benchDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-http-'));
  const servers: ServerProcess[] = [];
  try {
    progress(`database: ${database.description}`);
    // The baseline, and the same server with the required headers, or with all the required work.
    const spawnBare = async (name: string, env: Record<string, string>) => {
      const port = await freePort();
      const server = await spawnServer({
        name,
        args: ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'fixtures', 'bare-fastify.ts')],
        env: { ...process.env, ...env, PORT: String(port) },
        port,
        readyPath: PATH,
        stdout: 'discard',
      });
      servers.push(server);
      return server;
    };
    const bare = await spawnBare('bare-fastify', {});
    const headers = await spawnBare('bare-fastify-required-headers', { DIAGNOSTIC: 'headers' });
    const pipeline = await spawnBare('bare-fastify-required-pipeline', { DIAGNOSTIC: 'pipeline' });
    const keelPort = await freePort();
    const keel = await spawnServer({
      name: 'keel',
      args: [KEEL_BIN, 'start', '--role', 'api'],
      env: await keelEnvironment({
        DATABASE_URL: database.url,
        KEEL_DATA_DIR: dataDir,
        PORT: String(keelPort),
        LOG_LEVEL: 'info',
      }),
      port: keelPort,
      readyPath: '/health/ready',
      stdout: 'discard',
    });
    servers.push(keel);
    progress(
      `bare Fastify on ${bare.url}, keel --role api on ${keel.url} (LOG_LEVEL=info, stdout to /dev/null)`,
    );

    const targets = {
      baseline: `${bare.url}${PATH}`,
      measured: `${keel.url}${PATH}`,
      headers: `${headers.url}${PATH}`,
      pipeline: `${pipeline.url}${PATH}`,
    };
    const names = {
      baseline: 'bare fastify',
      measured: 'keel',
      headers: 'bare + required headers',
      pipeline: 'bare + required headers, histogram and log line',
    };
    for (const [role, url] of Object.entries(targets)) {
      const warm = await load(url, { connections: CONNECTIONS, durationSec: WARMUP_SECONDS });
      progress(`warm-up ${role}: ${describe(warm)}`);
    }
    const results: Record<keyof typeof targets, LoadResult[]> = {
      baseline: [],
      measured: [],
      headers: [],
      pipeline: [],
    };
    for (const [index, order] of roundOrder(ROUNDS).entries()) {
      // The diagnostics go between the two measured sides, so they share their conditions.
      for (const role of [order[0], 'headers', 'pipeline', order[1]] as const) {
        const result = await load(targets[role], { connections: CONNECTIONS, durationSec: ROUND_SECONDS });
        results[role].push(result);
        progress(`round ${index + 1}/${ROUNDS} ${names[role]}: ${describe(result)}`);
      }
    }
    const headersRps = median(results.headers.map((result) => result.rps));
    const pipelineRps = median(results.pipeline.map((result) => result.rps));

    const baseline = median(results.baseline.map((result) => result.rps));
    const value = median(results.measured.map((result) => result.rps));
    const summary = {
      bench: 'http',
      metric: 'keel_health_live_requests_per_second',
      value: round(value, 0),
      unit: 'req/s',
      baseline: round(baseline, 0),
      ratio: round(value / baseline, 3),
      p50_ms: round(median(results.measured.map((result) => result.p50_ms))),
      p99_ms: round(median(results.measured.map((result) => result.p99_ms))),
      headers: { value: round(headersRps, 0), ratio: round(headersRps / baseline, 3) },
      pipeline: { value: round(pipelineRps, 0), ratio: round(pipelineRps / baseline, 3) },
    };
    progress(
      `median of ${ROUNDS} rounds x ${ROUND_SECONDS} s, ${CONNECTIONS} connections: keel ${summary.value} req/s, ` +
        `bare Fastify ${summary.baseline} req/s (p50 ${round(median(results.baseline.map((r) => r.p50_ms)))} ms, ` +
        `p99 ${round(median(results.baseline.map((r) => r.p99_ms)))} ms): ratio ${summary.ratio} (goal >= 0.85)`,
    );
    progress(
      `diagnostic: bare Fastify with only the required headers ${summary.headers.value} req/s, ` +
        `ratio ${summary.headers.ratio} to bare Fastify; Keel to it: ${round(value / headersRps, 3)}`,
    );
    progress(
      `diagnostic: bare Fastify doing the required work (headers, histogram, log line) ` +
        `${summary.pipeline.value} req/s, ratio ${summary.pipeline.ratio} to bare Fastify; ` +
        `Keel to it: ${round(value / pipelineRps, 3)}`,
    );
    return summary;
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
