// Helpers for tests that run `keel` as a real child process: spawn it, read its JSON log lines,
// wait for a message or for its exit, and never leave a process behind. Every child spawned here
// (and every embedded PostgreSQL one of them reports) is stopped in an `after` hook of the test
// file that imports this module, whether its tests passed or not; temporary directories made with
// `tempDir()` are removed after that.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VARIABLES } from '../src/config.ts';

export const SERVER_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const KEEL_BIN = path.join(SERVER_ROOT, 'bin', 'keel.js');

/**
 * How long a test waits for a log message or an exit unless it says otherwise: a first embedded
 * start (initdb, every migration) took close to a minute on the shared 2-core machine under load.
 */
export const DEFAULT_WAIT_MS = 90_000;
/** How long cleanup gives a child to stop on SIGTERM (or SIGINT) before it is killed. */
const CLEANUP_GRACE_MS = 20_000;

/** One line of Keel's output: a pino JSON object, or `{ raw }` for a line that is not JSON. */
export interface LogLine {
  readonly msg?: string;
  readonly level?: string;
  readonly raw?: string;
  readonly [field: string]: unknown;
}

export type LogPredicate = string | ((line: LogLine) => boolean);

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface KeelProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far, parsed. */
  readonly logs: readonly LogLine[];
  stdout(): string;
  stderr(): string;
  /** The first line (already written or still to come) matching: a `msg` string or a predicate. */
  waitForLog(predicate: LogPredicate, timeoutMs?: number): Promise<LogLine>;
  /** Resolves once the process has exited and its output is fully read. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  readonly exit: Exit | undefined;
  /** Milliseconds from the last line written on stdout to the exit (once exited). */
  readonly lingeredMs: number | undefined;
}

export interface SpawnOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

const children = new Set<KeelProcess>();
/** Embedded PostgreSQL servers reported by children: they outlive a child killed with SIGKILL. */
const postgresPids = new Set<number>();
const tempDirs: string[] = [];

const matches = (predicate: LogPredicate) =>
  typeof predicate === 'string' ? (line: LogLine) => line.msg === predicate : predicate;

function parseLine(raw: string): LogLine {
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as LogLine;
  } catch {
    // Not JSON: kept as it is.
  }
  return { raw };
}

/**
 * The environment of a child `keel`: this process's environment without any variable Keel reads,
 * then no database or Redis (embedded defaults), info logs, port 0 on loopback, then `overrides`
 * (an `undefined` value removes the variable). NODE_ENV is left as it is.
 */
export function keelEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const variable of Object.values(VARIABLES)) delete env[variable.name];
  Object.assign(env, { DATABASE_URL: '', REDIS_URL: '', LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1' });
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Spawns `node server/bin/keel.js ...args`. The process is stopped after the test file at the latest. */
export function spawnKeel(args: readonly string[], options: SpawnOptions): KeelProcess {
  const child = spawn(process.execPath, [KEEL_BIN, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${KEEL_BIN}`);
  const logs: LogLine[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  let stdout = '';
  let stderr = '';
  let partial = '';
  let exit: Exit | undefined;
  let lastLineAt = performance.now();
  let exitedAt: number | undefined;

  const onLine = (raw: string) => {
    if (raw.trim() === '') return;
    const line = parseLine(raw);
    lastLineAt = performance.now();
    logs.push(line);
    if (line.component === 'embedded-postgres' && typeof line.pid === 'number' && line.pid !== child.pid) {
      postgresPids.add(line.pid);
    }
    for (const listener of listeners) listener(line);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const raw of lines) onLine(raw);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.on('error', (error) => {
    stderr += `\n[spawn error] ${error.message}`;
  });
  const closed = new Promise<Exit>((resolve) => {
    child.on('exit', () => {
      exitedAt = performance.now();
    });
    child.on('close', (code, signal) => {
      if (partial) onLine(partial);
      partial = '';
      exit = { code, signal };
      resolve(exit);
    });
  });

  const spawnedAt = performance.now();
  const describe = () =>
    `keel ${args.join(' ')} (pid ${child.pid}, spawned ${Math.round(performance.now() - spawnedAt)} ms ago, ` +
    `last line ${Math.round(performance.now() - lastLineAt)} ms ago)\n--- last stdout lines ---\n` +
    `${stdout.split('\n').slice(-15).join('\n')}\n--- stderr ---\n${stderr.slice(-3000)}`;

  const keel: KeelProcess = {
    child,
    pid: child.pid,
    logs,
    stdout: () => stdout,
    stderr: () => stderr,
    get exit() {
      return exit;
    },
    get lingeredMs() {
      return exitedAt === undefined ? undefined : Math.round(exitedAt - lastLineAt);
    },
    waitForLog(predicate, timeoutMs = DEFAULT_WAIT_MS) {
      const test = matches(predicate);
      const found = logs.find(test);
      if (found) return Promise.resolve(found);
      return new Promise<LogLine>((resolve, reject) => {
        const done = (error?: Error, line?: LogLine) => {
          clearTimeout(timer);
          listeners.delete(listener);
          if (error) reject(error);
          else resolve(line!);
        };
        const listener = (line: LogLine) => {
          if (test(line)) done(undefined, line);
        };
        const timer = setTimeout(
          () =>
            done(
              new Error(
                `no log line matching ${String(predicate)} within ${timeoutMs} ms from ${describe()}`,
              ),
            ),
          timeoutMs,
        );
        listeners.add(listener);
        void closed.then((status) => {
          if (listeners.has(listener)) {
            done(
              new Error(
                `exited (code ${status.code}, signal ${status.signal}) before logging ${String(predicate)}: ${describe()}`,
              ),
            );
          }
        });
      });
    },
    waitForExit(timeoutMs = DEFAULT_WAIT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`did not exit within ${timeoutMs} ms: ${describe()}`)),
          timeoutMs,
        );
      });
      return Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
    },
    stop(signal = 'SIGTERM', timeoutMs = DEFAULT_WAIT_MS) {
      if (!exit) child.kill(signal);
      return keel.waitForExit(timeoutMs);
    },
  };
  children.add(keel);
  void closed.then(() => children.delete(keel));
  return keel;
}

/** Runs `keel ...args` to completion: exit status, output and log lines. */
export async function runKeel(
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number },
): Promise<Exit & { stdout: string; stderr: string; logs: readonly LogLine[]; lingeredMs: number }> {
  const keel = spawnKeel(args, options);
  const exit = await keel.waitForExit(options.timeoutMs);
  return {
    ...exit,
    stdout: keel.stdout(),
    stderr: keel.stderr(),
    logs: keel.logs,
    lingeredMs: keel.lingeredMs ?? 0,
  };
}

/** A started `keel start`: its URL from the "keel listening" line. */
export async function listeningUrl(keel: KeelProcess, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
  const line = await keel.waitForLog('keel listening', timeoutMs);
  if (typeof line.url !== 'string')
    throw new Error(`"keel listening" without a url: ${JSON.stringify(line)}`);
  return line.url;
}

/** The embedded PostgreSQL a child reported as ready. */
export async function embeddedPostgres(keel: KeelProcess, timeoutMs = DEFAULT_WAIT_MS) {
  const line = await keel.waitForLog('embedded PostgreSQL is ready', timeoutMs);
  if (typeof line.port !== 'number' || typeof line.pid !== 'number') {
    throw new Error(`"embedded PostgreSQL is ready" without port and pid: ${JSON.stringify(line)}`);
  }
  return { port: line.port, pid: line.pid };
}

/** Index of the first line with `msg`, or -1: for asserting the order of log messages. */
export function logIndex(logs: readonly LogLine[], msg: string): number {
  return logs.findIndex((line) => line.msg === msg);
}

/**
 * Whether a process exists and is not a zombie. Zombies count as gone: an orphan reparented to a
 * PID 1 that does not reap its children stays a zombie after it has exited.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ...", where comm may itself contain spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

/** Polls `condition` until it holds, or fails after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = DEFAULT_WAIT_MS,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** GETs `url` with a timeout; the body is parsed as JSON when it is JSON. */
export async function get(
  url: string,
  timeoutMs = 5_000,
): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  let body: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(text);
  return { status: response.status, body, text };
}

/** Polls GET `url` until it answers `status` (the server may still be warming up). */
export async function waitForStatus(url: string, status = 200, timeoutMs = DEFAULT_WAIT_MS) {
  let last = 'no answer';
  await waitUntil(
    async () => {
      try {
        const response = await get(url);
        last = `${response.status} ${response.text.slice(0, 500)}`;
        return response.status === status;
      } catch (error) {
        last = (error as Error).message;
        return false;
      }
    },
    `GET ${url} answers ${status} (last: ${last})`,
    timeoutMs,
    100,
  );
}

/** Every `.sql` file in a `migrations/` folder under server/src: the migrations a database must end up with. */
export async function migrationFiles(): Promise<string[]> {
  const entries = await readdir(path.join(SERVER_ROOT, 'src'), { recursive: true });
  return entries.filter(
    (entry) => entry.endsWith('.sql') && path.basename(path.dirname(entry)) === 'migrations',
  );
}

/** A fresh directory under the OS temp dir, removed after the test file (after its processes stop). */
export async function tempDir(prefix = 'keel-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return process.platform !== 'linux';
  }
}

async function stopPid(pid: number, signal: NodeJS.Signals): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  try {
    await waitUntil(() => !isRunning(pid), `pid ${pid} exits`, CLEANUP_GRACE_MS);
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Stops every child still running (SIGTERM, then SIGKILL), then orphaned PostgreSQL servers. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all(
    [...children].map(async (keel) => {
      if (keel.exit) return;
      keel.child.kill('SIGTERM');
      try {
        await keel.waitForExit(CLEANUP_GRACE_MS);
      } catch {
        keel.child.kill('SIGKILL');
        await keel.waitForExit(5_000).catch(() => {});
      }
    }),
  );
  await Promise.all(
    [...postgresPids].map(async (pid) => {
      postgresPids.delete(pid);
      // SIGINT is PostgreSQL's fast shutdown.
      if (isRunning(pid) && isPostgres(pid)) await stopPid(pid, 'SIGINT');
    }),
  );
}

after(async () => {
  await stopAllProcesses();
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/**
 * Last resort, when the test process ends without running its `after` hooks: at exit, or when the
 * test runner stops a file that ran past its timeout (it sends SIGTERM). Every child is asked to
 * run its own ordered shutdown (SIGTERM, not SIGKILL, which would orphan its PostgreSQL), and any
 * orphaned PostgreSQL gets a fast shutdown. Nothing can be awaited here.
 */
function signalEverything() {
  for (const keel of children) if (!keel.exit) keel.child.kill('SIGTERM');
  for (const pid of postgresPids) {
    try {
      if (isRunning(pid) && isPostgres(pid)) process.kill(pid, 'SIGINT');
    } catch {
      // Already gone.
    }
  }
}

process.once('exit', signalEverything);
process.once('SIGTERM', () => {
  signalEverything();
  process.exit(128 + os.constants.signals.SIGTERM);
});
