import { createHash, randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import pg from 'pg';
import { buildApp } from '../src/app.ts';
import { type Config, configWith } from '../src/config.ts';
import type { App } from '../src/infra/http/pipeline.ts';
import { createLogger } from '../src/infra/observability/logger.ts';
import { createRuntime, type Runtime, type RuntimeOverrides } from '../src/infra/runtime.ts';

/**
 * The test harness. `scripts/test.ts` starts one PostgreSQL per run (the embedded one, or the
 * server at DATABASE_URL), migrates a template database, and passes its coordinates in these
 * variables; each test file clones the template into a database of its own.
 */
export const ADMIN_URL_ENV = 'KEEL_TEST_ADMIN_URL';
export const TEMPLATE_DB_ENV = 'KEEL_TEST_TEMPLATE_DB';
export const RUN_ID_ENV = 'KEEL_TEST_RUN_ID';
export const REDIS_URL_ENV = 'KEEL_TEST_REDIS_URL';

/** Set when the run has a Redis to test against; tests that need it skip (and say so) otherwise. */
export const testRedisUrl: string | undefined = process.env[REDIS_URL_ENV] || undefined;
export const SKIP_WITHOUT_REDIS: string | false = testRedisUrl ? false : 'REDIS_URL is not set for this run';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests through \`npm test\` (scripts/test.ts)`);
  return value;
}

export function adminUrl(): string {
  return required(ADMIN_URL_ENV);
}

export function databaseUrl(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh database for one test file: a clone of the migrated template, or empty if asked. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `keel_t_${required(RUN_ID_ENV)}_${randomBytes(5).toString('hex')}`;
  const template = options.empty ? 'template0' : required(TEMPLATE_DB_ENV);
  await withAdmin((client) => client.query(`create database ${name} template ${template}`));
  return {
    name,
    url: databaseUrl(adminUrl(), name),
    drop: () =>
      withAdmin((client) => client.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  };
}

export type ConfigOverrides = Parameters<typeof configWith>[0];

/** A config for tests: the given database, quiet logs (KEEL_TEST_LOG_LEVEL to see them). */
export function testConfig(database: TestDatabase, overrides: ConfigOverrides = {}): Config {
  return configWith({
    ...overrides,
    database: { url: database.url, poolSize: 5, migrateOnStart: false, ...overrides.database },
    log: {
      level: (process.env.KEEL_TEST_LOG_LEVEL as 'silent') ?? 'silent',
      pretty: false,
      ...overrides.log,
    },
    dataDir: overrides.dataDir ?? '/nonexistent-keel-data-dir',
    // One key per run, so app instances of one test that share a database share it too.
    masterKey:
      overrides.masterKey ??
      createHash('sha256').update(`keel-test-${process.env[RUN_ID_ENV]}`).digest('hex'),
  });
}

export interface TestApp {
  readonly app: App;
  readonly runtime: Runtime;
  readonly config: Config;
  close(): Promise<void>;
}

/** A ready app on its own runtime, for `app.inject()`. */
export async function buildTestApp(
  database: TestDatabase,
  options: { config?: ConfigOverrides } & RuntimeOverrides = {},
): Promise<TestApp> {
  const config = testConfig(database, options.config);
  const runtime = await createRuntime(config, { log: createLogger(config.log), ...options });
  const app = await buildApp(config, { runtime });
  return {
    app,
    runtime,
    config,
    close: async () => {
      await app.close();
      await runtime.close();
    },
  };
}

export type InjectMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/**
 * A test app on a fresh database for the enclosing `describe`: built before its tests, closed and
 * its database dropped after them. `app` and `inject` are read when a test runs.
 */
export function useTestApp(options: Parameters<typeof buildTestApp>[1] = {}) {
  let database: TestDatabase | undefined;
  let t: TestApp | undefined;
  before(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database, options);
  });
  after(async () => {
    await t?.close();
    await database?.drop();
  });
  const app = (): App => {
    if (!t) throw new Error('useTestApp: the app is built in before(); use it inside tests');
    return t.app;
  };
  return {
    get app(): App {
      return app();
    },
    inject: (
      method: InjectMethod,
      url: string,
      request: { headers?: Record<string, string>; payload?: object; remoteAddress?: string } = {},
    ) => app().inject({ method, url, ...request }),
  };
}
