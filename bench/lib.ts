// Shared helpers of the benchmarks: server processes, load generation, statistics and the result
// line. The machine benchmarks run on is small and shared, so every comparison interleaves
// baseline and measured rounds and reports medians.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const KEEL_BIN = path.join(REPO_ROOT, 'server', 'bin', 'keel.js');

/** The result line: the last line a bench prints on stdout (DESIGN.md, "Quality bar"). */
export interface BenchResult {
  readonly bench: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline: number;
  readonly ratio: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
}

/** How long a server may take from spawn to answering its readiness path. */
export const SERVER_START_TIMEOUT_MS = 120_000;
/** How long a server may take to exit after SIGTERM before it is killed. */
export const SERVER_STOP_TIMEOUT_MS = 30_000;

// --- statistics -------------------------------------------------------------------------------

/** The median; the mean of the two middle values for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The nearest-rank percentile (`p` in 0..100): the smallest value with p% of values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Rounds to `digits` decimals, for readable result lines. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The baseline-first, measured-first order of each round, alternating to cancel drift. */
export function roundOrder(
  rounds: number,
): Array<readonly ['baseline' | 'measured', 'baseline' | 'measured']> {
  return Array.from({ length: rounds }, (_, index) =>
    index % 2 === 0 ? (['baseline', 'measured'] as const) : (['measured', 'baseline'] as const),
  );
}

// --- output -------------------------------------------------------------------------------------

/** A human-readable progress line (stdout; the result line is printed last by run.ts). */
export function progress(message: string): void {
  process.stdout.write(`${message}\n`);
}

// --- processes ------------------------------------------------------------------------------------

export interface ServerProcess {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** stdout lines, when spawned with `stdout: 'collect'`. */
  readonly lines: readonly string[];
  stop(): Promise<void>;
}

const servers = new Set<ServerProcess>();

/** A free TCP port on 127.0.0.1 (free when asked; a server takes it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls GET `url` until it answers 200; returns when it did, in performance.now() time. */
export async function waitForOk(
  url: string,
  options: { timeoutMs?: number; intervalMs?: number; child?: ChildProcess; describe?: () => string } = {},
): Promise<number> {
  const deadline = Date.now() + (options.timeoutMs ?? SERVER_START_TIMEOUT_MS);
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (options.child && options.child.exitCode !== null) {
      throw new Error(
        `exited with ${options.child.exitCode} before ${url} answered 200\n${options.describe?.() ?? ''}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now();
      last = `status ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(options.intervalMs ?? 10);
  }
  throw new Error(`${url} did not answer 200 in time (last: ${last})\n${options.describe?.() ?? ''}`);
}

/**
 * Spawns `node ...args` listening on `port` (127.0.0.1), and waits until `readyPath` answers 200.
 * With `stdout: 'discard'` the child writes its stdout to /dev/null: its logs are really written,
 * and nothing in this process spends time reading them.
 */
export async function spawnServer(options: {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly port: number;
  readonly readyPath: string;
  readonly stdout: 'discard' | 'collect';
  readonly cwd?: string;
}): Promise<ServerProcess & { readonly spawnedAt: number; readonly readyAt: number }> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...options.args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env,
    stdio: ['ignore', options.stdout === 'discard' ? 'ignore' : 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  const server: ServerProcess = {
    name: options.name,
    url,
    child,
    lines,
    async stop() {
      servers.delete(server);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timeout = sleep(SERVER_STOP_TIMEOUT_MS).then(() => 'timeout' as const);
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  servers.add(server);
  const describe = () =>
    `--- ${options.name} stderr ---\n${stderr}\n--- stdout ---\n${lines.slice(-20).join('\n')}`;
  try {
    const readyAt = await waitForOk(`${url}${options.readyPath}`, { child, describe });
    return { ...server, spawnedAt, readyAt };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Stops every server still running (run.ts calls this whatever happened). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...servers].map((server) => server.stop()));
}

process.once('exit', () => {
  for (const server of servers) server.child.kill('SIGKILL');
});

/** The environment of a benchmarked `keel`: none of the caller's Keel variables, then `overrides`. */
export async function keelEnvironment(overrides: Record<string, string>): Promise<NodeJS.ProcessEnv> {
  const { VARIABLES } = await import('../server/src/config.ts');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const variable of Object.values(VARIABLES)) delete env[variable.name];
  return { ...env, DATABASE_URL: '', REDIS_URL: '', LOG_LEVEL: 'info', HOST: '127.0.0.1', ...overrides };
}

// --- database --------------------------------------------------------------------------------------

export interface BenchDatabase {
  readonly url: string;
  /** Where it lives, for the progress output. */
  readonly description: string;
  close(): Promise<void>;
}

/**
 * A fresh, empty database: created on the server at DATABASE_URL when that is set, otherwise on
 * an embedded PostgreSQL started in a temporary directory.
 */
export async function benchDatabase(): Promise<BenchDatabase> {
  const adminUrl = process.env.DATABASE_URL;
  if (adminUrl) {
    const name = `keel_bench_${randomBytes(4).toString('hex')}`;
    const admin = async (sql: string) => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await admin(`create database ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      description: `database ${name} on DATABASE_URL (${url.host})`,
      close: () => admin(`drop database if exists ${name} with (force)`),
    };
  }
  const [{ startEmbeddedPostgres }, { createLogger }] = await Promise.all([
    import('../server/src/infra/db/embedded.ts'),
    import('../server/src/infra/observability/logger.ts'),
  ]);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-pg-'));
  const embedded = await startEmbeddedPostgres({
    dataDir,
    log: createLogger({ level: 'warn', pretty: false, name: 'keel-bench' }),
  });
  return {
    url: embedded.url,
    description: `embedded PostgreSQL (port ${embedded.port})`,
    async close() {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// --- load ------------------------------------------------------------------------------------------

export interface ClosedLoopResult {
  /** Units completed per second of the measured window. */
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failures: number;
}

/**
 * Closed-loop load in this process: `clients` loops each run `once` back to back through a
 * warm-up and then the measured window; only what starts and ends inside the window counts.
 * `once` answers how many units it completed and how many failed.
 */
export async function closedLoop(
  options: { readonly clients: number; readonly warmupMs: number; readonly measureMs: number },
  once: () => Promise<{ done: number; failed: number }>,
): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let completed = 0;
  let failures = 0;
  const measureFrom = performance.now() + options.warmupMs;
  const stopAt = measureFrom + options.measureMs;
  await Promise.all(
    Array.from({ length: options.clients }, async () => {
      while (performance.now() < stopAt) {
        const began = performance.now();
        const { done, failed } = await once();
        const ended = performance.now();
        if (began >= measureFrom && ended <= stopAt) {
          latencies.push(ended - began);
          completed += done;
          failures += failed;
        }
      }
    }),
  );
  return {
    perSecond: completed / (options.measureMs / 1000),
    p50Ms: latencies.length > 0 ? percentile(latencies, 50) : 0,
    p99Ms: latencies.length > 0 ? percentile(latencies, 99) : 0,
    failures,
  };
}

export interface LoadResult {
  /** Mean requests per second over the run. */
  readonly rps: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly requests: number;
  /** Requests sent, answered or not (more than `requests` when the run ended mid-request). */
  readonly sent: number;
}

/** Runs autocannon against `url` (127.0.0.1 only) and fails on any non-2xx, error or timeout. */
export async function load(
  url: string,
  options: { connections: number; durationSec: number; headers?: Record<string, string> },
): Promise<LoadResult> {
  const { hostname } = new URL(url);
  if (hostname !== '127.0.0.1') throw new Error(`benchmarks only load 127.0.0.1, not ${hostname}`);
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.durationSec,
    pipelining: 1,
    ...(options.headers && { headers: options.headers }),
  });
  const failures = result.non2xx + result.errors + result.timeouts;
  if (failures > 0) {
    throw new Error(
      `${url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts ` +
        `out of ${result.requests.total} requests`,
    );
  }
  return {
    rps: result.requests.average,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    requests: result.requests.total,
    sent: result.requests.sent,
  };
}

/** A JSON request to a server under test; a non-2xx answer fails the bench. */
export async function json(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (!response.ok)
    throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}
