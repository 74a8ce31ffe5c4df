import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import type { Logger } from '../observability/logger.ts';

/** Every key and channel Keel writes starts with this, so one Redis can be shared. */
export const KEY_PREFIX = 'keel:';
/** Reconnect backoff: doubling from the first delay up to the cap. */
export const RECONNECT_FIRST_DELAY_MS = 50;
export const RECONNECT_MAX_DELAY_MS = 2_000;
/** A command waits this long for Redis before it fails; callers decide what failing means. */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000;
/** How often the in-memory store drops expired keys that nobody read again. */
export const MEMORY_SWEEP_INTERVAL_MS = 60_000;

export type MessageHandler = (message: string) => void;

/** What a script's in-memory twin may touch: the store's values, synchronously, and its clock. */
export interface ScriptData {
  get(key: string): string | null;
  /** `ttlMs` absent: the value does not expire. */
  set(key: string, value: string, ttlMs?: number): void;
  delete(key: string): void;
  nowMs(): number;
}

export type ScriptArgument = string | number;
/** Redis turns a Lua table into an array reply: integers and strings, possibly nested. */
export type ScriptReply = number | string | null | ScriptReply[];

/**
 * An atomic read-modify-write over several keys: Lua for Redis, and the same logic in
 * TypeScript for the memory store. The TypeScript twin runs synchronously on one thread, so it
 * is exactly as atomic as the Lua script is on the Redis server. Keys are passed as for `get`
 * (Redis sees them with KEY_PREFIX, like every other command). The twin must return what
 * Redis would: Lua numbers become integers (truncated), tables become arrays.
 */
export interface Script<Result extends ScriptReply = ScriptReply> {
  /** A unique name: the command is defined once per connection under it. */
  readonly name: string;
  readonly lua: string;
  readonly memory: (data: ScriptData, keys: readonly string[], args: readonly ScriptArgument[]) => Result;
}

/**
 * The little Keel needs from Redis: a cache with TTLs, counters, and pub/sub across replicas.
 * The embedded default keeps all of it in process memory, which is right for one process only.
 */
export interface KeyValueStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | null>;
  /** Returns false when `onlyIfAbsent` is set and the key exists. */
  set(key: string, value: string, options?: { ttlMs?: number; onlyIfAbsent?: boolean }): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Adds `by` and returns the new value; a key it creates expires after `ttlMs`. */
  increment(key: string, by: number, ttlMs?: number): Promise<number>;
  /** Runs `script` atomically over `keys` (which, in Redis Cluster, must share a hash tag). */
  run<Result extends ScriptReply>(
    script: Script<Result>,
    keys: readonly string[],
    args: readonly ScriptArgument[],
  ): Promise<Result>;
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createMemoryStore(clock: Clock): KeyValueStore {
  const values = new Map<string, { value: string; expiresAtMs: number | undefined }>();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const live = (key: string) => {
    const entry = values.get(key);
    if (entry?.expiresAtMs !== undefined && entry.expiresAtMs <= clock.now().getTime()) {
      values.delete(key);
      return undefined;
    }
    return entry;
  };
  const sweep = setInterval(() => {
    for (const key of values.keys()) live(key);
  }, MEMORY_SWEEP_INTERVAL_MS);
  sweep.unref();
  const expiry = (ttlMs?: number) => (ttlMs === undefined ? undefined : clock.now().getTime() + ttlMs);
  const scriptData: ScriptData = {
    get: (key) => live(key)?.value ?? null,
    set: (key, value, ttlMs) => {
      values.set(key, { value, expiresAtMs: expiry(ttlMs) });
    },
    delete: (key) => {
      values.delete(key);
    },
    nowMs: () => clock.now().getTime(),
  };
  return {
    kind: 'memory',
    get: async (key) => live(key)?.value ?? null,
    set: async (key, value, options = {}) => {
      if (options.onlyIfAbsent && live(key)) return false;
      values.set(key, { value, expiresAtMs: expiry(options.ttlMs) });
      return true;
    },
    delete: async (key) => {
      values.delete(key);
    },
    increment: async (key, by, ttlMs) => {
      const entry = live(key);
      const next = (entry ? Number(entry.value) : 0) + by;
      values.set(key, { value: String(next), expiresAtMs: entry ? entry.expiresAtMs : expiry(ttlMs) });
      return next;
    },
    run: async (script, keys, args) => script.memory(scriptData, keys, args),
    publish: async (channel, message) => {
      bus.emit(channel, message);
    },
    subscribe: async (channel, handler) => {
      bus.on(channel, handler);
      return async () => {
        bus.off(channel, handler);
      };
    },
    ping: async () => {},
    close: async () => {
      clearInterval(sweep);
      bus.removeAllListeners();
    },
  };
}

export function createRedisConnection(url: string, log: Logger, name: string): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    // Fail a command after one reconnect attempt instead of queueing it without bound.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) =>
      Math.min(RECONNECT_FIRST_DELAY_MS * 2 ** (attempt - 1), RECONNECT_MAX_DELAY_MS),
    lazyConnect: false,
  });
  let lastError = '';
  redis.on('error', (error: Error) => {
    // ioredis emits the same error on every reconnect attempt; log each distinct one once.
    if (error.message !== lastError) log.warn({ err: error, connection: name }, 'redis connection error');
    lastError = error.message;
  });
  redis.on('ready', () => {
    if (lastError) log.info({ connection: name }, 'redis connection restored');
    lastError = '';
  });
  return redis;
}

export function createRedisStore(url: string, log: Logger): KeyValueStore {
  const redis = createRedisConnection(url, log, 'keel');
  let subscriber: Redis | undefined;
  const handlers = new Map<string, Set<MessageHandler>>();
  const defined = new Set<string>();
  type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: ScriptArgument[]) => Promise<ScriptReply>;
  const subscriberConnection = () => {
    if (!subscriber) {
      // A connection in subscriber mode can run no other command, so pub/sub gets its own; it
      // resubscribes to every channel by itself after a reconnect.
      subscriber = createRedisConnection(url, log, 'keel-subscriber');
      subscriber.on('message', (channel: string, message: string) => {
        for (const handler of handlers.get(channel.slice(KEY_PREFIX.length)) ?? []) handler(message);
      });
    }
    return subscriber;
  };
  return {
    kind: 'redis',
    get: (key) => redis.get(KEY_PREFIX + key),
    set: async (key, value, options = {}) => {
      const k = KEY_PREFIX + key;
      const result =
        options.ttlMs !== undefined
          ? options.onlyIfAbsent
            ? await redis.set(k, value, 'PX', options.ttlMs, 'NX')
            : await redis.set(k, value, 'PX', options.ttlMs)
          : options.onlyIfAbsent
            ? await redis.set(k, value, 'NX')
            : await redis.set(k, value);
      return result === 'OK';
    },
    delete: async (key) => {
      await redis.del(KEY_PREFIX + key);
    },
    increment: async (key, by, ttlMs) => {
      const k = KEY_PREFIX + key;
      if (ttlMs === undefined) return redis.incrby(k, by);
      const [[, value] = []] = (await redis.multi().incrby(k, by).pexpire(k, ttlMs, 'NX').exec()) ?? [];
      return Number(value);
    },
    run: async <Result extends ScriptReply>(
      script: Script<Result>,
      keys: readonly string[],
      args: readonly ScriptArgument[],
    ) => {
      // defineCommand sends EVALSHA and falls back to EVAL when the server does not know the
      // script yet (after a restart or a failover), so the source crosses the wire rarely.
      if (!defined.has(script.name)) {
        redis.defineCommand(`keel_${script.name}`, { lua: script.lua });
        defined.add(script.name);
      }
      const command = (redis as unknown as Record<string, ScriptCommand>)[`keel_${script.name}`]!;
      return (await command.call(
        redis,
        keys.length,
        ...keys.map((key) => KEY_PREFIX + key),
        ...args,
      )) as Result;
    },
    publish: async (channel, message) => {
      await redis.publish(KEY_PREFIX + channel, message);
    },
    subscribe: async (channel, handler) => {
      const connection = subscriberConnection();
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await connection.subscribe(KEY_PREFIX + channel);
      }
      set.add(handler);
      return async () => {
        set.delete(handler);
        if (set.size === 0) {
          handlers.delete(channel);
          await connection.unsubscribe(KEY_PREFIX + channel).catch(() => {});
        }
      };
    },
    ping: async () => {
      await redis.ping();
    },
    close: async () => {
      await Promise.all([
        redis.quit().catch(() => redis.disconnect()),
        subscriber?.quit().catch(() => subscriber?.disconnect()),
      ]);
    },
  };
}
