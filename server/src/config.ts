import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import ipaddr from 'ipaddr.js';

/** HTTP port when PORT is not set. */
export const DEFAULT_PORT = 8080;
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
    /** The URL browsers and mail recipients reach Keel at: links in mail, SSO callbacks, SIWE. */
    readonly publicUrl: string;
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
  readonly webhooks: {
    /** Addresses or CIDR ranges that tenant-supplied URLs may reach despite being private. */
    readonly ssrfAllowlist: readonly string[];
  };
  readonly sentry: { readonly dsn: string | undefined };
  readonly mail: {
    /** Absent: mail is written to the log instead of sent (development only). */
    readonly smtpUrl: string | undefined;
    readonly from: string;
  };
  /** JSON-RPC endpoints per EVM chain id, for wallet sign-in and every on-chain feature. */
  readonly chains: { readonly rpcUrls: readonly ChainRpcUrl[] };
  readonly contracts: {
    /** The key `keel contracts deploy` pays deployments with; only that command reads it. */
    readonly deployerPrivateKey: `0x${string}` | undefined;
  };
  readonly access: {
    /** CIDRs that may call admin routes of every org; empty: any address. */
    readonly adminIpAllowlist: readonly string[];
    /** Secure on the session cookie; only turn it off for plain-http development. */
    readonly sessionCookieSecure: boolean;
    readonly sessionCookieSameSite: 'strict' | 'lax';
  };
  readonly rateLimit: {
    /** Requests per minute per client address on unauthenticated routes. */
    readonly ipPerMinute: number;
    /** Requests per minute per API key (or signed-in user) unless the key sets its own. */
    readonly keyPerMinute: number;
    /** Requests per minute per org unless the org sets its own. */
    readonly orgPerMinute: number;
    /** `exact`: one Redis call per request; `local`: units leased from Redis in batches. */
    readonly mode: 'exact' | 'local';
    /** When Redis cannot answer: limit per replica in memory (`open`) or refuse (`closed`). */
    readonly onRedisFailure: 'open' | 'closed';
  };
  readonly usage: {
    /** Count authenticated API requests per org, key, route and hour (docs/usage.md). */
    readonly meterRequests: boolean;
  };
}

export interface ChainRpcUrl {
  readonly chainId: number;
  readonly url: string;
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

function publicUrl(raw: string): string {
  const parsed = new URL(url(['http:', 'https:'])(raw.trim()));
  if (parsed.search || parsed.hash) throw new VariableError('must have no query or fragment');
  return parsed.toString().replace(/\/$/, '');
}

/** `Name <address>` or a bare address; the address needs a local part and a domain. */
function mailbox(raw: string): string {
  const value = raw.trim();
  const address = /<([^<>]+)>$/.exec(value)?.[1] ?? value;
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(address)) {
    throw new VariableError(`must be an address such as "Keel <keel@example.com>", got "${raw}"`);
  }
  return value;
}

function chainRpcUrls(raw: string): ChainRpcUrl[] {
  const list: ChainRpcUrl[] = [];
  for (const entry of raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const separator = entry.indexOf('=');
    const chainId = separator > 0 ? entry.slice(0, separator).trim() : '';
    if (!/^\d{1,15}$/.test(chainId) || Number(chainId) === 0) {
      throw new VariableError(
        `"${entry}" must look like <chain id>=<http(s) URL>, e.g. 1=https://rpc.example`,
      );
    }
    const rpcUrl = url(['http:', 'https:'])(entry.slice(separator + 1).trim());
    if (list.some((existing) => existing.chainId === Number(chainId))) {
      throw new VariableError(`chain ${chainId} is listed twice`);
    }
    list.push({ chainId: Number(chainId), url: rpcUrl });
  }
  return list;
}

function cidrList(raw: string): string[] {
  const list = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const entry of list) {
    const valid = entry.includes('/') ? isValidCidr(entry) : ipaddr.isValid(entry);
    if (!valid) throw new VariableError(`"${entry}" is not an IP address or CIDR range`);
  }
  return list;
}

function isValidCidr(entry: string): boolean {
  try {
    ipaddr.parseCIDR(entry);
    return true;
  } catch {
    return false;
  }
}

function privateKey(raw: string): `0x${string}` {
  const value = raw.trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(value)) throw new VariableError('must be 32 bytes as 64 hex characters');
  return (value.startsWith('0x') ? value : `0x${value}`).toLowerCase() as `0x${string}`;
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
    parse: withDefault(DEFAULT_PORT, integer(0, 65535)),
  },
  HOST: {
    name: 'HOST',
    description: 'Interface to listen on.',
    parse: withDefault('0.0.0.0', (raw) => raw.trim()),
  },
  PUBLIC_URL: {
    name: 'PUBLIC_URL',
    description:
      'External URL of Keel (https://keel.example.com), used in mailed links, SSO callbacks and SIWE. Default http://localhost:<PORT>.',
    parse: optional(publicUrl),
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
  SSRF_ALLOWLIST: {
    name: 'SSRF_ALLOWLIST',
    description:
      'Comma-separated IPs or CIDR ranges that webhook URLs and SSO issuers may reach although private (e.g. 10.0.5.0/24). Default: none.',
    parse: withDefault<string[]>([], cidrList),
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
  SMTP_URL: {
    name: 'SMTP_URL',
    description:
      'SMTP server for outgoing mail: smtp://user:pass@host:587 (STARTTLS) or smtps://…:465. Unset: mail is only written to the log.',
    secret: true,
    parse: optional(url(['smtp:', 'smtps:'])),
  },
  MAIL_FROM: {
    name: 'MAIL_FROM',
    description: 'Sender of the mail Keel sends, as "Name <address>".',
    parse: withDefault('Keel <keel@localhost>', mailbox),
  },
  CHAIN_RPC_URLS: {
    name: 'CHAIN_RPC_URLS',
    description: 'JSON-RPC URL per EVM chain id: 1=https://…,8453=https://…',
    secret: true,
    parse: withDefault<ChainRpcUrl[]>([], chainRpcUrls),
  },
  KEEL_DEPLOYER_PRIVATE_KEY: {
    name: 'KEEL_DEPLOYER_PRIVATE_KEY',
    description:
      'EVM private key (64 hex characters) that pays for `keel contracts deploy`. Read by that command only.',
    secret: true,
    parse: optional(privateKey),
  },
  KEEL_ADMIN_IP_ALLOWLIST: {
    name: 'KEEL_ADMIN_IP_ALLOWLIST',
    description:
      'Comma-separated IPs or CIDR ranges allowed to call admin routes (members, security, keys of every org). Default: any.',
    parse: withDefault<string[]>([], cidrList),
  },
  KEEL_SESSION_COOKIE_SECURE: {
    name: 'KEEL_SESSION_COOKIE_SECURE',
    description: 'Mark the dashboard session cookie Secure (HTTPS only). Default true.',
    parse: withDefault(true, boolean),
  },
  KEEL_SESSION_COOKIE_SAMESITE: {
    name: 'KEEL_SESSION_COOKIE_SAMESITE',
    description: 'SameSite of the session cookie: lax or strict. Default lax.',
    parse: withDefault<'strict' | 'lax'>('lax', oneOf(['strict', 'lax'] as const)),
  },
  KEEL_RATE_LIMIT_IP_PER_MINUTE: {
    name: 'KEEL_RATE_LIMIT_IP_PER_MINUTE',
    description: 'Requests per minute per client address on unauthenticated routes. Default 100.',
    parse: withDefault(100, integer(1, 1_000_000_000)),
  },
  KEEL_RATE_LIMIT_KEY_PER_MINUTE: {
    name: 'KEEL_RATE_LIMIT_KEY_PER_MINUTE',
    description:
      'Requests per minute per API key or signed-in user, unless the key sets its own. Default 1000.',
    parse: withDefault(1_000, integer(1, 1_000_000_000)),
  },
  KEEL_RATE_LIMIT_ORG_PER_MINUTE: {
    name: 'KEEL_RATE_LIMIT_ORG_PER_MINUTE',
    description: 'Requests per minute per org, unless the org sets its own. Default 10000.',
    parse: withDefault(10_000, integer(1, 1_000_000_000)),
  },
  KEEL_RATE_LIMIT_MODE: {
    name: 'KEEL_RATE_LIMIT_MODE',
    description:
      'exact (one Redis call per request) or local (units leased from Redis in batches). Default exact.',
    parse: withDefault<'exact' | 'local'>('exact', oneOf(['exact', 'local'] as const)),
  },
  KEEL_METER_REQUESTS: {
    name: 'KEEL_METER_REQUESTS',
    description:
      'Count authenticated API requests per org, key, route and hour for the usage API and api_requests quotas. Default true.',
    parse: withDefault(true, boolean),
  },
  KEEL_RATE_LIMIT_ON_REDIS_FAILURE: {
    name: 'KEEL_RATE_LIMIT_ON_REDIS_FAILURE',
    description:
      'When Redis cannot answer: open (limit per replica in memory) or closed (answer 503). Default open.',
    parse: withDefault<'open' | 'closed'>('open', oneOf(['open', 'closed'] as const)),
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
  const port = read(v.PORT);
  const config: Config = {
    http: {
      port,
      host: read(v.HOST),
      corsOrigins: read(v.CORS_ORIGINS),
      trustProxy: read(v.TRUST_PROXY),
      bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
      requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      shutdownDrainMs: DEFAULT_SHUTDOWN_DRAIN_MS,
      publicUrl: read(v.PUBLIC_URL) ?? `http://localhost:${port ?? DEFAULT_PORT}`,
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
    webhooks: { ssrfAllowlist: read(v.SSRF_ALLOWLIST) },
    sentry: { dsn: read(v.SENTRY_DSN) },
    mail: { smtpUrl: read(v.SMTP_URL), from: read(v.MAIL_FROM) },
    chains: { rpcUrls: read(v.CHAIN_RPC_URLS) },
    contracts: { deployerPrivateKey: read(v.KEEL_DEPLOYER_PRIVATE_KEY) },
    access: {
      adminIpAllowlist: read(v.KEEL_ADMIN_IP_ALLOWLIST),
      sessionCookieSecure: read(v.KEEL_SESSION_COOKIE_SECURE),
      sessionCookieSameSite: read(v.KEEL_SESSION_COOKIE_SAMESITE),
    },
    rateLimit: {
      ipPerMinute: read(v.KEEL_RATE_LIMIT_IP_PER_MINUTE),
      keyPerMinute: read(v.KEEL_RATE_LIMIT_KEY_PER_MINUTE),
      orgPerMinute: read(v.KEEL_RATE_LIMIT_ORG_PER_MINUTE),
      mode: read(v.KEEL_RATE_LIMIT_MODE),
      onRedisFailure: read(v.KEEL_RATE_LIMIT_ON_REDIS_FAILURE),
    },
    usage: { meterRequests: read(v.KEEL_METER_REQUESTS) },
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
    contracts: { deployerPrivateKey: config.contracts.deployerPrivateKey ? REDACTED : '(unset)' },
    sentry: { dsn: redactUrl(config.sentry.dsn) },
    mail: { ...config.mail, smtpUrl: redactUrl(config.mail.smtpUrl) ?? '(log only: mail is not sent)' },
    // RPC URLs often carry a provider API key in the path: only the host is printed.
    chains: {
      rpcUrls: config.chains.rpcUrls.map(({ chainId, url }) => ({ chainId, url: new URL(url).origin })),
    },
  };
}
