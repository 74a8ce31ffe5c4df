import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';

/** Largest request body Keel accepts, unless a route sets its own. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** How long a client may take to send a whole request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** How long an idle keep-alive connection is kept open. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** How long a graceful shutdown waits for in-flight requests before closing their sockets. */
export const DEFAULT_SHUTDOWN_DRAIN_MS = 10_000;
/** Postgres connections per process when DATABASE_POOL_SIZE is not set. */
export const DEFAULT_DATABASE_POOL_SIZE = 10;
export const MAX_DATABASE_POOL_SIZE = 500;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly http: {
    readonly port: number;
    readonly host: string;
    readonly corsOrigins: readonly string[];
    readonly trustProxy: boolean;
    readonly bodyLimitBytes: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly shutdownDrainMs: number;
  };
  readonly dataDir: string;
  readonly database: {
    /** Absent: Keel runs its own embedded PostgreSQL under `dataDir`. */
    readonly url: string | undefined;
    readonly poolSize: number;
    readonly migrateOnStart: boolean;
  };
  readonly redis: { readonly url: string | undefined };
  readonly log: { readonly level: LogLevel; readonly pretty: boolean };
  readonly masterKey: string | undefined;
  readonly otel: { readonly endpoint: string | undefined };
  readonly sentry: { readonly dsn: string | undefined };
}

/** One environment variable: how to parse it, its default, and whether it is a secret. */
interface Variable<T> {
  readonly name: string;
  readonly description: string;
  readonly secret?: boolean;
  readonly parse: (raw: string | undefined) => T;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

class VariableError extends Error {}

const optional =
  <T>(parse: (raw: string) => T) =>
  (raw: string | undefined): T | undefined =>
    raw === undefined || raw === '' ? undefined : parse(raw);

const withDefault =
  <T>(fallback: T, parse: (raw: string) => T) =>
  (raw: string | undefined): T =>
    raw === undefined || raw === '' ? fallback : parse(raw);

function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new VariableError(`must be a whole number, got "${raw}"`);
    const value = Number(raw);
    if (value < min || value > max)
      throw new VariableError(`must be between ${min} and ${max}, got ${value}`);
    return value;
  };
}

function boolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new VariableError(`must be true or false, got "${raw}"`);
}

function url(protocols: readonly string[]) {
  return (raw: string): string => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new VariableError('must be a URL');
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new VariableError(`must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
    }
    return raw;
  };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string): T => {
    if (!(values as readonly string[]).includes(raw)) {
      throw new VariableError(`must be one of ${values.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };
}

function origins(raw: string): string[] {
  const list = raw
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of list) {
    if (origin === '*') continue;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new VariableError(`"${origin}" is not an origin such as https://app.example.com`);
    }
    if (parsed.origin !== origin) {
      throw new VariableError(`"${origin}" is not an origin (scheme://host[:port], no path)`);
    }
  }
  return list;
}

function masterKey(raw: string): string {
  const bytes = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (bytes.length !== 32) throw new VariableError('must be 32 bytes, as 64 hex characters or base64');
  return raw;
}

/** Every variable Keel reads. `.env.example` and docs/configuration.md list the same set. */
export const VARIABLES = {
  PORT: {
    name: 'PORT',
    description: 'TCP port of the HTTP API (0 picks a free port).',
    parse: withDefault(8080, integer(0, 65535)),
  },
  HOST: {
    name: 'HOST',
    description: 'Interface to listen on.',
    parse: withDefault('0.0.0.0', (raw) => raw.trim()),
  },
  KEEL_DATA_DIR: {
    name: 'KEEL_DATA_DIR',
    description: 'Where the embedded PostgreSQL and the local keystore keep their files.',
    parse: withDefault(path.resolve('.keel'), (raw) => path.resolve(raw)),
  },
  DATABASE_URL: {
    name: 'DATABASE_URL',
    description: 'PostgreSQL (>= 15) connection URL. Unset: Keel runs an embedded PostgreSQL.',
    secret: true,
    parse: optional(url(['postgres:', 'postgresql:'])),
  },
  DATABASE_POOL_SIZE: {
    name: 'DATABASE_POOL_SIZE',
    description: 'Postgres connections per process.',
    parse: withDefault(DEFAULT_DATABASE_POOL_SIZE, integer(1, MAX_DATABASE_POOL_SIZE)),
  },
  KEEL_MIGRATE_ON_START: {
    name: 'KEEL_MIGRATE_ON_START',
    description:
      'Apply pending migrations at start (under an advisory lock). Set false to run `keel migrate` as a release step.',
    parse: withDefault(true, boolean),
  },
  REDIS_URL: {
    name: 'REDIS_URL',
    description: 'Redis (>= 7) or Valkey URL. Unset: limits and cache live in process memory.',
    secret: true,
    parse: optional(url(['redis:', 'rediss:'])),
  },
  LOG_LEVEL: {
    name: 'LOG_LEVEL',
    description: 'One of fatal, error, warn, info, debug, trace, silent.',
    parse: withDefault<LogLevel>('info', oneOf(LOG_LEVELS)),
  },
  CORS_ORIGINS: {
    name: 'CORS_ORIGINS',
    description: 'Comma-separated browser origins allowed to call the API. Empty: no cross-origin access.',
    parse: withDefault<string[]>([], origins),
  },
  TRUST_PROXY: {
    name: 'TRUST_PROXY',
    description: 'Trust X-Forwarded-* headers from a load balancer in front of Keel.',
    parse: withDefault(false, boolean),
  },
  KEEL_MASTER_KEY: {
    name: 'KEEL_MASTER_KEY',
    description:
      'Key-encryption key for signing keys kept at rest: 32 bytes, as 64 hex characters or base64.',
    secret: true,
    parse: optional(masterKey),
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    description: 'OTLP/HTTP collector base URL. Set: traces of HTTP, pg and Redis calls are exported.',
    parse: optional(url(['http:', 'https:'])),
  },
  SENTRY_DSN: {
    name: 'SENTRY_DSN',
    description: 'Sentry DSN. Set: unexpected errors are reported to Sentry.',
    secret: true,
    parse: optional(url(['http:', 'https:'])),
  },
} satisfies Record<string, Variable<unknown>>;

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Reads `.env` from `cwd` when present. Variables already set in the environment win, as with
 * every dotenv loader.
 */
export function environmentWithDotenv(env: Environment = process.env, cwd = process.cwd()): Environment {
  const file = path.join(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseDotenv(readFileSync(file)), ...env };
}

/** Parses every variable, collecting all problems, and returns a deep-frozen config. */
export function loadConfig(env: Environment = environmentWithDotenv()): Config {
  const problems: string[] = [];
  const read = <T>(variable: Variable<T>): T => {
    try {
      return variable.parse(env[variable.name]);
    } catch (error) {
      if (!(error instanceof VariableError)) throw error;
      problems.push(`${variable.name} ${error.message}`);
      return undefined as T;
    }
  };
  const v = VARIABLES;
  const config: Config = {
    http: {
      port: read(v.PORT),
      host: read(v.HOST),
      corsOrigins: read(v.CORS_ORIGINS),
      trustProxy: read(v.TRUST_PROXY),
      bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
      requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      shutdownDrainMs: DEFAULT_SHUTDOWN_DRAIN_MS,
    },
    dataDir: read(v.KEEL_DATA_DIR),
    database: {
      url: read(v.DATABASE_URL),
      poolSize: read(v.DATABASE_POOL_SIZE),
      migrateOnStart: read(v.KEEL_MIGRATE_ON_START),
    },
    redis: { url: read(v.REDIS_URL) },
    log: { level: read(v.LOG_LEVEL), pretty: Boolean(process.stdout.isTTY) },
    masterKey: read(v.KEEL_MASTER_KEY),
    otel: { endpoint: read(v.OTEL_EXPORTER_OTLP_ENDPOINT) },
    sentry: { dsn: read(v.SENTRY_DSN) },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** Returns a config for tests and tools, with overrides applied on top of the defaults. */
export function configWith(overrides: DeepPartial<Config>, env: Environment = {}): Config {
  return deepFreeze(
    merge(
      structuredClone(loadConfig(env)) as unknown as Record<string, unknown>,
      overrides,
    ) as unknown as Config,
  );
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function merge(target: Record<string, unknown>, source: object): Record<string, unknown> {
  for (const [key, value] of Object.entries(source)) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      target[key] = merge((target[key] ?? {}) as Record<string, unknown>, value);
    } else {
      target[key] = value;
    }
  }
  return target;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

const REDACTED = '[redacted]';

/** The config as `keel config check` prints it: passwords in URLs and secrets replaced. */
export function redactConfig(config: Config): unknown {
  const redactUrl = (value: string | undefined) => {
    if (!value) return value;
    const parsed = new URL(value);
    if (parsed.password) parsed.password = REDACTED;
    if (parsed.username && parsed.protocol.startsWith('http')) parsed.username = REDACTED;
    return parsed.toString();
  };
  return {
    ...config,
    database: { ...config.database, url: redactUrl(config.database.url) ?? '(embedded)' },
    redis: { url: redactUrl(config.redis.url) ?? '(in-memory)' },
    masterKey: config.masterKey ? REDACTED : '(local keystore)',
    sentry: { dsn: redactUrl(config.sentry.dsn) },
  };
}
