// Start-up time of `keel start` with the embedded defaults: from spawning the process to the
// first 200 from GET /health/ready. The first run on a fresh KEEL_DATA_DIR initialises the
// embedded PostgreSQL (initdb) and applies every migration; the second run on the same directory
// only starts it. Metric: the second run; baseline: the first run.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type BenchResult,
  freePort,
  KEEL_BIN,
  keelEnvironment,
  median,
  percentile,
  progress,
  round,
  spawnServer,
} from './lib.ts';

/** Fresh data directories started twice each. */
export const ITERATIONS = 3;

interface StartTiming {
  /** Spawn to the first 200 from /health/ready, measured here. */
  readonly readyMs: number;
  /** Keel's own `startMs` (its "keel listening" line): after module loading, until listening. */
  readonly keelStartMs: number | undefined;
}

async function startOnce(dataDir: string): Promise<StartTiming> {
  const port = await freePort();
  const keel = await spawnServer({
    name: 'keel',
    args: [KEEL_BIN, 'start'],
    env: await keelEnvironment({ KEEL_DATA_DIR: dataDir, PORT: String(port) }),
    port,
    readyPath: '/health/ready',
    stdout: 'collect',
  });
  try {
    const listening = keel.lines
      .map((line) => {
        try {
          return JSON.parse(line) as { msg?: string; startMs?: number };
        } catch {
          return {};
        }
      })
      .find((line) => line.msg === 'keel listening');
    return { readyMs: keel.readyAt - keel.spawnedAt, keelStartMs: listening?.startMs };
  } finally {
    await keel.stop();
  }
}

export async function run(): Promise<BenchResult> {
  const first: number[] = [];
  const second: number[] = [];
  for (let iteration = 1; iteration <= ITERATIONS; iteration++) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-startup-'));
    try {
      const initial = await startOnce(dataDir);
      const again = await startOnce(dataDir);
      first.push(initial.readyMs);
      second.push(again.readyMs);
      progress(
        `iteration ${iteration}/${ITERATIONS}: first run ${Math.round(initial.readyMs)} ms to ready ` +
          `(keel startMs ${initial.keelStartMs}), second run ${Math.round(again.readyMs)} ms ` +
          `(keel startMs ${again.keelStartMs})`,
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const value = median(second);
  const baseline = median(first);
  progress(
    `median of ${ITERATIONS}: first run (initdb + migrations) ${Math.round(baseline)} ms, ` +
      `second run ${Math.round(value)} ms`,
  );
  return {
    bench: 'startup',
    metric: 'second_start_to_ready_ms',
    value: round(value, 0),
    unit: 'ms',
    baseline: round(baseline, 0),
    ratio: round(value / baseline, 3),
    p50_ms: round(value, 0),
    p99_ms: round(percentile(second, 99), 0),
  };
}
