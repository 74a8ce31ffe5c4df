// The `keel` command as an operator runs it: a real child process, its exit status, its output,
// and (for `keel start` with no DATABASE_URL) the embedded PostgreSQL it owns.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './harness.ts';
import {
  type Exit,
  embeddedPostgres,
  get,
  isRunning,
  type KeelProcess,
  keelEnv,
  listeningUrl,
  logIndex,
  migrationFiles,
  runKeel,
  SERVER_ROOT,
  spawnKeel,
  tempDir,
} from './process.ts';

const VERSION = (
  JSON.parse(readFileSync(path.join(SERVER_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
/** Exit status of `keel` for bad usage or configuration. */
const EXIT_USAGE = 2;
/** A command that has logged its last line should exit within this long. */
const LINGER_LIMIT_MS = 5_000;

/** Runs every child in an empty directory, so no stray `.env` is read by accident. */
let cwd: string;
before(async () => {
  cwd = await tempDir('keel-cli-cwd-');
});

const usageAndConfiguration = () =>
  describe('usage and configuration', { concurrency: false }, () => {
    it('keel --help prints usage naming start, migrate and config check', async () => {
      const result = await runKeel(['--help'], { cwd, env: keelEnv() });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /keel start \[--role all\|api\|worker\]/);
      assert.match(result.stdout, /keel migrate/);
      assert.match(result.stdout, /keel config check/);
    });

    it('keel --version prints the version from server/package.json', async () => {
      const result = await runKeel(['--version'], { cwd, env: keelEnv() });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${VERSION}\n`);
    });

    it('PORT=notaport keel start exits non-zero, names PORT, and starts nothing', async () => {
      const dataDir = await tempDir('keel-cli-data-');
      const result = await runKeel(['start'], {
        cwd,
        env: keelEnv({ PORT: 'notaport', KEEL_DATA_DIR: dataDir }),
      });
      assert.equal(result.code, EXIT_USAGE, result.stderr);
      assert.match(result.stderr, /\bPORT\b.*notaport/);
      assert.equal(result.stdout, '', 'nothing is logged: no embedded PostgreSQL was started');
      assert.deepEqual(readdirSync(dataDir), [], 'the data directory is left untouched');
    });

    it('keel config check with an invalid LOG_LEVEL exits non-zero and names LOG_LEVEL', async () => {
      const result = await runKeel(['config', 'check'], { cwd, env: keelEnv({ LOG_LEVEL: 'loud' }) });
      assert.equal(result.code, EXIT_USAGE);
      assert.match(result.stderr, /\bLOG_LEVEL\b.*loud/);
      assert.equal(result.stdout, '');
    });

    it('every invalid variable is named in one run', async () => {
      const env = keelEnv({
        PORT: '99999',
        LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://db.example.com/keel',
        REDIS_URL: 'not a url',
        TRUST_PROXY: 'maybe',
        KEEL_MASTER_KEY: 'too-short',
        DATABASE_POOL_SIZE: '0',
      });
      // `keel start` reads its config the same way (see the PORT=notaport test).
      const result = await runKeel(['config', 'check'], { cwd, env });
      assert.equal(result.code, EXIT_USAGE);
      assert.equal(result.stdout, '');
      for (const name of [
        'PORT',
        'LOG_LEVEL',
        'DATABASE_URL',
        'REDIS_URL',
        'TRUST_PROXY',
        'KEEL_MASTER_KEY',
        'DATABASE_POOL_SIZE',
      ]) {
        assert.match(result.stderr, new RegExp(`\\b${name}\\b`), `names ${name}`);
      }
      assert.doesNotMatch(result.stderr, /too-short/, 'the bad secret itself is not echoed');
    });

    it('keel config check prints the resolved config as JSON with every secret redacted', async () => {
      const secrets = {
        database: `dbpw${randomBytes(8).toString('hex')}`,
        redis: `redispw${randomBytes(8).toString('hex')}`,
        masterKey: randomBytes(32).toString('hex'),
        sentry: `sentrykey${randomBytes(8).toString('hex')}`,
      };
      const result = await runKeel(['config', 'check'], {
        cwd,
        env: keelEnv({
          PORT: '8123',
          DATABASE_URL: `postgres://keel:${secrets.database}@db.example.com:5432/keel`,
          REDIS_URL: `redis://default:${secrets.redis}@cache.example.com:6379/0`,
          KEEL_MASTER_KEY: secrets.masterKey,
          SENTRY_DSN: `https://${secrets.sentry}@o1.ingest.sentry.io/42`,
        }),
      });
      assert.equal(result.code, 0, result.stderr);
      const config = JSON.parse(result.stdout) as {
        http: { port: number; host: string };
        database: { url: string };
        redis: { url: string };
        masterKey: string;
        log: { level: string };
      };
      assert.equal(config.http.port, 8123);
      assert.equal(config.http.host, '127.0.0.1');
      assert.equal(config.log.level, 'info');
      const database = new URL(config.database.url);
      assert.equal(database.host, 'db.example.com:5432', 'the URL is still shown, only its password is not');
      assert.equal(database.username, 'keel');
      assert.equal(new URL(config.redis.url).host, 'cache.example.com:6379');
      assert.equal(config.masterKey, '[redacted]');
      for (const [name, secret] of Object.entries(secrets)) {
        assert.ok(!result.stdout.includes(secret), `the ${name} secret does not appear in the output`);
        assert.ok(!result.stderr.includes(secret), `the ${name} secret does not appear on stderr`);
      }
    });

    it('a .env file in the working directory is read, and an environment variable of the same name wins', async () => {
      const dir = await realpath(await tempDir('keel-cli-dotenv-'));
      await writeFile(
        path.join(dir, '.env'),
        [
          '# read by keel',
          'PORT=4321',
          'LOG_LEVEL=warn',
          'KEEL_DATA_DIR=./from-dotenv',
          'TRUST_PROXY=true',
          '',
        ].join('\n'),
      );
      const result = await runKeel(['config', 'check'], {
        cwd: dir,
        // PORT and KEEL_DATA_DIR are left to the .env file; LOG_LEVEL and TRUST_PROXY are set in both.
        env: keelEnv({ PORT: undefined, KEEL_DATA_DIR: undefined, LOG_LEVEL: 'error', TRUST_PROXY: 'false' }),
      });
      assert.equal(result.code, 0, result.stderr);
      const config = JSON.parse(result.stdout) as {
        http: { port: number; trustProxy: boolean };
        log: { level: string };
        dataDir: string;
      };
      assert.equal(config.http.port, 4321, 'PORT comes from .env');
      assert.equal(
        config.dataDir,
        path.join(dir, 'from-dotenv'),
        'KEEL_DATA_DIR comes from .env, relative to the cwd',
      );
      assert.equal(config.log.level, 'error', 'LOG_LEVEL from the environment wins over .env');
      assert.equal(config.http.trustProxy, false, 'TRUST_PROXY from the environment wins over .env');
    });

    it('a failure’s stack trace names the TypeScript sources, though keel runs the compiled server', async () => {
      // Nothing listens on port 1: migrating fails inside Keel's own code.
      const result = await runKeel(['migrate'], {
        cwd,
        env: keelEnv({ DATABASE_URL: 'postgres://keel@127.0.0.1:1/keel' }),
      });
      assert.notEqual(result.code, 0);
      const output = result.stdout + result.stderr;
      assert.match(output, /ECONNREFUSED/);
      const frame = /\((\S+\/server\/src\/infra\/db\/migrate\.ts):(\d+):\d+\)/.exec(output);
      assert.ok(frame, `a frame in server/src/infra/db/migrate.ts:\n${output}`);
      assert.ok(existsSync(frame[1]!), 'the named file exists');
      assert.doesNotMatch(output, /server\/dist\//);
    });
  });

// --- embedded PostgreSQL -------------------------------------------------------------------------

interface Running {
  readonly keel: KeelProcess;
  readonly url: string;
  readonly postgres: { port: number; pid: number };
}

/** `keel start` with no DATABASE_URL on `dataDir`, once /health/ready answers 200 and the workers run. */
async function startEmbedded(dataDir: string): Promise<Running> {
  const keel = spawnKeel(['start'], { cwd, env: keelEnv({ KEEL_DATA_DIR: dataDir }) });
  try {
    const url = await listeningUrl(keel);
    const postgres = await embeddedPostgres(keel);
    const ready = await get(`${url}/health/ready`);
    assert.equal(ready.status, 200, ready.text);
    assert.equal((ready.body as { status: string }).status, 'ready');
    // Role all starts its workers just after it listens; a signal sent before then would find no
    // worker to stop.
    await keel.waitForLog('worker started');
    return { keel, url, postgres };
  } catch (error) {
    // Stopped here, so that the next step does not find a second keel on the same data directory.
    await keel.stop('SIGTERM').catch(() => keel.stop('SIGKILL'));
    throw error;
  }
}

/** Processes whose command line names `pgdata`: the postmaster of that data directory, if any. */
function processesServing(pgdata: string): number[] {
  if (process.platform !== 'linux') return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(pgdata) && isRunning(Number(entry))) pids.push(Number(entry));
    } catch {
      // The process exited while being looked at.
    }
  }
  return pids;
}

/** The ordered shutdown: exit 0, steps logged in order, and no PostgreSQL left on the data dir. */
function assertOrderlyStop(run: Running, exit: Exit, signal: NodeJS.Signals, dataDir: string) {
  const { logs } = run.keel;
  assert.deepEqual(exit, { code: 0, signal: null }, run.keel.stderr());
  const shuttingDown = logs.findIndex((line) => line.msg === 'shutting down' && line.signal === signal);
  const steps = [
    shuttingDown,
    logIndex(logs, 'worker stopped'),
    logIndex(logs, 'embedded PostgreSQL stopped'),
  ];
  const trace = logs.map((line) => `${line.time} ${line.level} ${line.msg}`).join('\n');
  assert.ok(
    steps.every((index) => index >= 0),
    `shutdown steps logged: ${JSON.stringify(steps)}\n${trace}`,
  );
  assert.deepEqual(
    [...steps].sort((a, b) => a - b),
    steps,
    `shutting down, then worker stopped, then embedded PostgreSQL stopped:\n${trace}`,
  );
  // "stopped" is the last step, but the lines written just before process.exit() can reach stdout
  // out of order (see SHUTDOWN_TODO), so only its presence after the worker's stop is asserted.
  assert.ok(logIndex(logs, 'stopped') > steps[1]!, `"stopped" logged:\n${trace}`);
  assert.ok(logIndex(logs, 'keel listening') < shuttingDown);
  assert.equal(isRunning(run.postgres.pid), false, `embedded PostgreSQL (pid ${run.postgres.pid}) is gone`);
  assert.deepEqual(
    processesServing(path.join(dataDir, 'postgres')),
    [],
    'no process serves the data directory',
  );
}

/** Problems logged between the start of the shutdown and "stopped". */
function shutdownProblems(keel: KeelProcess): string[] {
  const from = logIndex(keel.logs, 'shutting down');
  return keel.logs
    .slice(from)
    .filter((line) => line.level === 'error' || line.level === 'warn' || line.level === 'fatal')
    .map((line) => `${line.level}: ${line.msg}`);
}

async function cleanShutdown(t: TestContext, keel: KeelProcess) {
  await t.test('the shutdown logs no errors and "stopped" is its last line', () => {
    assert.deepEqual(shutdownProblems(keel), []);
    assert.equal(keel.logs.at(-1)?.msg, 'stopped');
  });
}

const embeddedDefault = () =>
  describe('embedded default: keel start with no DATABASE_URL', { concurrency: false }, () => {
    // One data directory for the whole sequence: each step starts from the state the last one left.
    let dataDir: string;
    let running: Running | undefined;
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    const current = () => {
      assert.ok(running, 'an earlier step failed to start keel');
      return running;
    };
    const connect = async (port: number) => {
      const password = (await readFile(path.join(dataDir, 'postgres.password'), 'utf8')).trim();
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'keel', password, database: 'keel' });
      client.on('error', () => {});
      await client.connect();
      return client;
    };

    before(async () => {
      dataDir = await tempDir('keel-cli-data-');
    });

    it('initialises the embedded PostgreSQL in a fresh KEEL_DATA_DIR and reaches /health/ready 200', async () => {
      running = await startEmbedded(dataDir);
      const { logs } = running.keel;
      assert.ok(logIndex(logs, 'initialising the embedded PostgreSQL data directory') >= 0);
      assert.equal(isRunning(running.postgres.pid), true);
      const client = await connect(running.postgres.port);
      try {
        await client.query('create table cli_test_marker (value text not null)');
        await client.query('insert into cli_test_marker (value) values ($1)', [marker]);
      } finally {
        await client.end();
      }
    });

    it('SIGTERM runs the ordered shutdown: exit 0, worker stopped before embedded PostgreSQL stopped, no PostgreSQL left', async (t) => {
      const run = current();
      running = undefined;
      assertOrderlyStop(run, await run.keel.stop('SIGTERM'), 'SIGTERM', dataDir);
      await cleanShutdown(t, run.keel);
    });

    it('data written to the embedded database survives a restart', async () => {
      running = await startEmbedded(dataDir);
      assert.equal(
        logIndex(running.keel.logs, 'initialising the embedded PostgreSQL data directory'),
        -1,
        'the second start reuses the data directory',
      );
      const client = await connect(running.postgres.port);
      try {
        const { rows } = await client.query<{ value: string }>('select value from cli_test_marker');
        assert.deepEqual(
          rows.map((row) => row.value),
          [marker],
        );
      } finally {
        await client.end();
      }
    });

    let orphan: number | undefined;

    it('after kill -9 of keel, its embedded PostgreSQL is left running (nothing can catch SIGKILL)', async () => {
      const run = current();
      running = undefined;
      assert.deepEqual(await run.keel.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
      orphan = run.postgres.pid;
      assert.equal(isRunning(orphan), true, `the orphaned PostgreSQL (pid ${orphan}) still runs`);
    });

    it('the next keel start on that data directory stops the orphan and comes up ready', async () => {
      assert.ok(orphan, 'an earlier step failed to orphan a PostgreSQL');
      running = await startEmbedded(dataDir);
      const warning = running.keel.logs.find((line) =>
        line.msg?.startsWith('stopping an embedded PostgreSQL left running'),
      );
      assert.equal(warning?.pid, orphan, 'the start names the orphan it stops');
      assert.equal(isRunning(orphan), false, `the orphaned PostgreSQL (pid ${orphan}) is gone`);
      assert.notEqual(running.postgres.pid, orphan);
    });

    it('SIGINT runs the same ordered shutdown', async (t) => {
      const run = current();
      running = undefined;
      assertOrderlyStop(run, await run.keel.stop('SIGINT'), 'SIGINT', dataDir);
      await cleanShutdown(t, run.keel);
    });
  });

// --- keel migrate ----------------------------------------------------------------------------------

let emptyDatabase: TestDatabase | undefined;
after(async () => {
  await emptyDatabase?.drop();
});

const keelMigrate = () =>
  describe('keel migrate', { concurrency: false }, () => {
    it('keel migrate applies every migration to an empty database, and a second run applies nothing', async (t) => {
      emptyDatabase = await createTestDatabase({ empty: true });
      const env = keelEnv({ DATABASE_URL: emptyDatabase.url });
      const files = await migrationFiles();
      assert.ok(files.length > 0);

      const first = spawnKeel(['migrate'], { cwd, env });
      const summary = await first.waitForLog(
        (line) => line.msg === 'migrations applied' || line.msg === 'database is up to date',
      );
      assert.equal(summary.msg, 'migrations applied');
      assert.equal(summary.applied, files.length, first.stdout());
      assert.equal(first.logs.filter((line) => line.msg === 'migration applied').length, files.length);
      // The migrations are committed once the summary is logged; the second run starts then rather
      // than at the first one's exit, which the test below checks separately.
      const second = spawnKeel(['migrate'], { cwd, env });
      const [firstExit, secondExit] = await Promise.all([first.waitForExit(), second.waitForExit()]);
      assert.deepEqual(firstExit, { code: 0, signal: null }, first.stderr());
      assert.deepEqual(secondExit, { code: 0, signal: null }, second.stderr());
      assert.equal(second.logs.filter((line) => line.msg === 'migration applied').length, 0);
      const upToDate = second.logs.find((line) => line.msg === 'database is up to date');
      assert.equal(upToDate?.applied, 0, second.stdout());

      await t.test('keel migrate exits as soon as it is done', () => {
        for (const run of [first, second]) {
          assert.ok(run.lingeredMs! < LINGER_LIMIT_MS, `exited ${run.lingeredMs} ms after its last log line`);
        }
      });

      const client = new pg.Client({ connectionString: emptyDatabase.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ count: number }>(
          'select count(*)::int as count from keel_migrations',
        );
        assert.equal(rows[0]?.count, files.length);
      } finally {
        await client.end();
      }
    });
  });

// The three groups run at the same time: most of their time is spent waiting on child processes
// (and `keel migrate` lingers, see its todo). The tests inside each group run one after another.
describe('keel CLI', { concurrency: true }, () => {
  usageAndConfiguration();
  embeddedDefault();
  keelMigrate();
});
