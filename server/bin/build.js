#!/usr/bin/env node
// Compiles server/src to plain JavaScript in server/dist, so `keel` runs without a TypeScript
// loader. `npm run build` runs this file; `keel` (bin/keel.js) calls ensureBuilt() on every start.
//
// - Emit: the project's own TypeScript (`tsc -p server/tsconfig.build.json`, no type checking:
//   `npm run typecheck` does that), `.ts` import specifiers rewritten to `.js`, and every
//   `migrations/*.sql` copied beside the output, so server/dist has server/src's layout and every
//   `import.meta.url`-relative path (migrations, contracts/, package.json) resolves the same.
// - Freshness: dist/.keel-build.json records the inputs as they were just before compiling: the
//   mtime and size of every compiled source, every migration and the build configuration, and
//   what each directory held. dist is fresh while they are unchanged: one stat per file, ~2 ms.
// - Atomicity: a build goes to a temporary directory beside dist, is stamped, then renamed into
//   place, so no process ever sees a half-written dist. A lock directory keeps processes that start
//   together from compiling the same sources twice; it is only an optimisation (a stale or broken
//   lock costs a second compile, never a wrong dist), so it is taken over when its owner has died.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const SERVER_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SOURCE_DIR = path.join(SERVER_ROOT, 'src');
export const DIST_DIR = path.join(SERVER_ROOT, 'dist');
/** Temporary builds, the previous dist while it is swapped out, and the lock. Git-ignored. */
const WORK_DIR = path.join(SERVER_ROOT, '.build');
const LOCK_DIR = path.join(WORK_DIR, 'lock');
const TSCONFIG = path.join(SERVER_ROOT, 'tsconfig.build.json');
const STAMP_FILE = '.keel-build.json';
/** Where the source maps of dist point: server/src of this checkout. */
const SOURCE_ROOT = `${pathToFileURL(SOURCE_DIR).href}/`;
/** Besides the sources: a change to any of these changes what a build emits. */
const CONFIG_INPUTS = [
  TSCONFIG,
  path.join(SERVER_ROOT, '..', 'tsconfig.json'),
  fileURLToPath(import.meta.url),
];

/** A lock older than this is taken over even if its owner still runs (a compile takes ~1 s). */
const LOCK_STALE_MS = 120_000;
/** How often a process waiting for another one's build looks again. */
const LOCK_POLL_MS = 50;
/** How long a process waits for another one's build before compiling on its own. */
const LOCK_WAIT_MS = 60_000;
/** At most this much of the compiler's output is repeated on stderr when a build fails. */
const MAX_ERROR_OUTPUT = 4_000;

const isSource = (name) => name.endsWith('.ts') && !name.endsWith('.test.ts');
const isMigration = (name, dir) => name.endsWith('.sql') && path.basename(dir) === 'migrations';
const mtimeAndSize = (stat) => [stat.mtimeMs, stat.size];
/** Tells apart two directories one process makes (node:crypto is not loaded for this). */
const uniqueSuffix = () => Math.random().toString(36).slice(2, 10);

/** What a directory holds that matters to the build: its subdirectories (as `name/`) and inputs. */
function listDir(dir) {
  const names = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) names.push(`${entry.name}/`);
    else if (isSource(entry.name) || isMigration(entry.name, dir)) names.push(entry.name);
  }
  return names.sort();
}

/**
 * The inputs as they are now, recorded in the stamp: the build configuration's files, every
 * directory under server/src with its mtime and what it holds, and every compiled source and
 * migration with its mtime and size.
 */
function scanInputs() {
  const config = CONFIG_INPUTS.map((file) => {
    const stat = statSync(file, { throwIfNoEntry: false });
    return [path.relative(SERVER_ROOT, file), ...(stat ? mtimeAndSize(stat) : [])];
  });
  const dirs = {};
  const files = {};
  const visit = (relative) => {
    const dir = path.join(SOURCE_DIR, relative);
    // Before listing: an entry added after the listing leaves a newer mtime than the one recorded.
    const { mtimeMs } = statSync(dir);
    const names = listDir(dir);
    dirs[relative] = [mtimeMs, names];
    for (const name of names) {
      const child = relative ? `${relative}/${name}` : name;
      if (name.endsWith('/')) visit(child.slice(0, -1));
      else files[child] = mtimeAndSize(statSync(path.join(SOURCE_DIR, child)));
    }
  };
  visit('');
  return { config, dirs, files };
}

function readStamp(dir = DIST_DIR) {
  try {
    return JSON.parse(readFileSync(path.join(dir, STAMP_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * True when server/dist exists and was built from the sources as they are now: every input and
 * configuration file has the mtime and size the stamp recorded, and no directory gained or lost an
 * input (a directory whose mtime moved is listed again, so an editor's swap file costs no
 * rebuild). One stat per file and per directory, no file read but the stamp: ~2 ms for ~250.
 */
export function isFresh() {
  const stamp = readStamp();
  const inputs = stamp?.inputs;
  if (!inputs || stamp.sourceRoot !== SOURCE_ROOT) return false;
  // Paths are joined by hand: path.join(), still unoptimised this early, would triple the cost.
  const same = (file, recorded) => {
    const stat = statSync(file, { throwIfNoEntry: false });
    return stat ? stat.mtimeMs === recorded[0] && stat.size === recorded[1] : recorded.length === 0;
  };
  for (const [file, ...recorded] of inputs.config) {
    if (!same(`${SERVER_ROOT}${file}`, recorded)) return false;
  }
  for (const relative in inputs.dirs) {
    const [mtimeMs, names] = inputs.dirs[relative];
    const dir = `${SOURCE_DIR}/${relative}`;
    const stat = statSync(dir, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) return false;
    if (stat.mtimeMs !== mtimeMs && listDir(dir).join('/') !== names.join('/')) return false;
  }
  for (const relative in inputs.files) {
    if (!same(`${SOURCE_DIR}/${relative}`, inputs.files[relative])) return false;
  }
  return true;
}

/** The TypeScript compiler's entry point, or undefined when TypeScript is not installed. */
function findCompiler() {
  try {
    const manifest = createRequire(import.meta.url).resolve('typescript/package.json');
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    return { bin: path.join(path.dirname(manifest), 'bin', 'tsc'), version };
  } catch {
    return undefined;
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Takes the build lock: true when taken, false when another live process holds it. */
function tryLock() {
  mkdirSync(WORK_DIR, { recursive: true });
  try {
    mkdirSync(LOCK_DIR);
    writeFileSync(path.join(LOCK_DIR, 'owner'), String(process.pid));
    return true;
  } catch (error) {
    if (error.code !== 'EEXIST') throw error;
  }
  let owner;
  let age;
  try {
    age = Date.now() - statSync(LOCK_DIR).mtimeMs;
    owner = Number(readFileSync(path.join(LOCK_DIR, 'owner'), 'utf8'));
  } catch {
    // Just created (no owner written yet) or just released: look again on the next poll.
    return false;
  }
  // No pid yet means its owner is writing it.
  if (age < LOCK_STALE_MS && (!owner || pidAlive(owner))) return false;
  // Its owner died (or hung): move the lock aside and try again on the next poll.
  try {
    renameSync(LOCK_DIR, path.join(WORK_DIR, `stale-lock-${process.pid}-${uniqueSuffix()}`));
  } catch {
    // Someone else moved it first.
  }
  return false;
}

function unlock() {
  rmSync(LOCK_DIR, { recursive: true, force: true });
}

/**
 * Removes what dead processes left in the work directory: unfinished builds, old dists, locks.
 * Best effort: a compiler orphaned by a killed process may still be writing into its build.
 */
function sweep() {
  for (const name of readdirSync(WORK_DIR)) {
    const match = /^(?:tmp|old|stale-lock)-(\d+)-/.exec(name);
    if (!match || (!name.startsWith('stale-lock') && pidAlive(Number(match[1])))) continue;
    try {
      rmSync(path.join(WORK_DIR, name), { recursive: true, force: true });
    } catch {
      // The next build tries again.
    }
  }
}

function copyMigrations(inputs, to) {
  for (const name of Object.keys(inputs.files)) {
    if (!name.endsWith('.sql')) continue;
    mkdirSync(path.dirname(path.join(to, name)), { recursive: true });
    writeFileSync(path.join(to, name), readFileSync(path.join(SOURCE_DIR, name)));
  }
}

/**
 * Runs the compiler in a child process; rejects with its output when it fails. It gets a process
 * group of its own, so stopping it on `signal` also stops the native compiler its shim runs.
 */
async function compile(compiler, outDir, signal) {
  const { spawn } = await import('node:child_process');
  // The build lands in a temporary directory deeper than dist, so relative source paths in the
  // maps would point one level too high once it is renamed: they are rooted at src instead.
  // (A checkout that moves is rebuilt: isFresh compares this root.)
  const args = [compiler.bin, '-p', TSCONFIG, '--outDir', outDir, '--sourceRoot', SOURCE_ROOT];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  signal.addEventListener('abort', stop);
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  try {
    const code = await new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) throw new Error(`tsc exited with ${code}:\n${output.trim().slice(0, MAX_ERROR_OUTPUT)}`);
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Compiles into a temporary directory, stamps it, and renames it into place as server/dist.
 * The caller holds the lock (`locked`), or gave up waiting for it. A SIGINT or SIGTERM during the build
 * stops the compiler and removes the temporary directory before the process exits as it would have.
 */
async function buildLocked(compiler, locked) {
  const id = `${process.pid}-${uniqueSuffix()}`;
  const tmp = path.join(WORK_DIR, `tmp-${id}`);
  const abort = new AbortController();
  const onSignal = (signal) => {
    abort.abort();
    rmSync(tmp, { recursive: true, force: true });
    if (locked) unlock();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    sweep();
    // Taken before compiling: a source edited during the build leaves the result stale.
    const stamp = {
      builtAt: new Date().toISOString(),
      typescript: compiler.version,
      sourceRoot: SOURCE_ROOT,
      inputs: scanInputs(),
    };
    await compile(compiler, tmp, abort.signal);
    if (!statSync(path.join(tmp, 'main.js'), { throwIfNoEntry: false })) {
      throw new Error(`tsc emitted no main.js (check ${path.relative(process.cwd(), TSCONFIG)})`);
    }
    copyMigrations(stamp.inputs, tmp);
    writeFileSync(path.join(tmp, STAMP_FILE), `${JSON.stringify(stamp)}\n`);
    const old = path.join(WORK_DIR, `old-${id}`);
    let replaced = false;
    try {
      renameSync(DIST_DIR, old);
      replaced = true;
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    }
    try {
      renameSync(tmp, DIST_DIR);
    } catch (error) {
      // Another process put its build in place between the two renames: keep that one.
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    }
    if (replaced) rmSync(old, { recursive: true, force: true });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Builds server/dist now, whether or not it is fresh; waits for a build already under way first. */
export async function build({ force = true } = {}) {
  const compiler = findCompiler();
  if (!compiler) throw new Error('TypeScript is not installed (npm install, with devDependencies)');
  const deadline = Date.now() + LOCK_WAIT_MS;
  let locked = tryLock();
  while (!locked && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    // Another process was building: its result may be what this one needs.
    if (!force && isFresh()) return 'fresh';
    locked = tryLock();
  }
  try {
    if (!force && isFresh()) return 'fresh';
    await buildLocked(compiler, locked);
    return 'built';
  } finally {
    if (locked) unlock();
  }
}

/**
 * What `keel` runs: 'dist' when server/dist is fresh (building it first when it is missing or
 * stale), 'source' when it cannot be built (no TypeScript installed, or the compiler failed), with
 * a note on stderr; stdout is left to the program's JSON logs.
 */
export async function ensureBuilt() {
  // Shipped without its sources: the build is all there is.
  if (!statSync(SOURCE_DIR, { throwIfNoEntry: false })) return readStamp() ? 'dist' : 'source';
  if (isFresh()) return 'dist';
  if (!findCompiler()) {
    process.stderr.write(
      'keel: server/dist is missing or stale and TypeScript is not installed: running the sources through tsx\n',
    );
    return 'source';
  }
  const started = performance.now();
  try {
    const result = await build({ force: false });
    if (result === 'built') {
      process.stderr.write(
        `keel: compiled server/src to server/dist in ${Math.round(performance.now() - started)} ms\n`,
      );
    }
    return 'dist';
  } catch (error) {
    process.stderr.write(
      `keel: building server/dist failed, running the sources through tsx: ${error.message}\n`,
    );
    return 'source';
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now();
  try {
    await build();
    process.stdout.write(`built server/dist in ${Math.round(performance.now() - started)} ms\n`);
  } catch (error) {
    process.stderr.write(`build failed: ${error.message}\n`);
    process.exitCode = 1;
  }
}
