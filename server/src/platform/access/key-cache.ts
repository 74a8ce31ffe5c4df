import type { Clock } from '../../infra/clock.ts';
import type { Db } from '../../infra/db/database.ts';
import type { Permission } from '../../infra/http/auth.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { KeyValueStore } from '../../infra/redis/kv.ts';
import { type Allowlist, allowlistOf } from './domain/cidr.ts';
import type { ApiKeyEnvironment } from './domain/tokens.ts';
import { findKeyBySecretHash, recordKeysLastUsed } from './store.ts';

/** A verified key's facts are trusted this long while invalidation is known to work. */
export const KEY_CACHE_TTL_MS = 60_000;
/**
 * Revocation reaches every replica within this bound: invalidations are published at once, a
 * poll every KEY_REVOCATION_POLL_MS catches any a replica missed, and while the poll cannot
 * reach the store, cached keys older than this are read again from Postgres.
 */
export const KEY_REVOCATION_BOUND_MS = 1_000;
export const KEY_REVOCATION_POLL_MS = 250;
/** Cached keys (and unknown secrets) per replica; the oldest are dropped first. */
export const KEY_CACHE_MAX_ENTRIES = 50_000;
/** Last-used times are written in one statement per this interval, not per request. */
export const LAST_USED_FLUSH_INTERVAL_MS = 10_000;

/** What the hot path needs of a key, decided once per cache load. */
export interface CachedKey {
  readonly id: string;
  readonly orgId: string;
  readonly environment: ApiKeyEnvironment;
  readonly permissions: ReadonlySet<Permission>;
  /** The earlier of the key's expiry and this secret's end of grace; undefined: never. */
  readonly expiresAtMs: number | undefined;
  readonly rateLimitPerMinute: number | null;
  readonly orgRateLimitPerMinute: number | null;
  readonly ipAllowlist: Allowlist | undefined;
  readonly orgAdminIpAllowlist: Allowlist | undefined;
}

interface Entry {
  /** Null: no working key has this secret (unknown or revoked). */
  readonly key: CachedKey | null;
  readonly loadedAtMs: number;
}

export type Invalidation = { keyId: string } | { orgId: string };

export interface KeyCache {
  /** The key behind a secret's hash, from the cache or (on a miss) from Postgres. */
  /** The key whose secret has this SHA-256 digest (base64, see `tokenDigest`). */
  lookup(secretDigest: string): Promise<CachedKey | null>;
  /**
   * The cached answer for the digest when it is fresh, without waiting: a key, or null for a
   * secret known not to work. Undefined: not cached (or stale); `lookup` must load it.
   */
  peek(secretDigest: string): CachedKey | null | undefined;
  /** Drops the key (or every key of the org) here and on every other replica. */
  invalidate(target: Invalidation): Promise<void>;
  /** Notes that the key was used at `atMs` (epoch ms); written in batches. */
  noteUse(key: CachedKey, atMs: number): void;
  /** Writes the noted last-used times now (they are written every LAST_USED_FLUSH_INTERVAL_MS). */
  flushLastUsed(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const allowlistOrUndefined = (entries: readonly string[]) =>
  entries.length === 0 ? undefined : allowlistOf(entries);

/**
 * The per-replica cache of API keys that keeps Postgres off the hot path.
 *
 * Cross-replica invalidation: a change bumps a version counter in the shared store and
 * publishes `{version, keyId | orgId}`. Subscribers drop what it names. Every replica also polls
 * the counter; a version it has not seen a message for (a message lost while its subscriber
 * reconnected) drops the whole cache. While the poll fails, entries older than
 * KEY_REVOCATION_BOUND_MS are re-read from Postgres, so revocation still lands within the bound.
 */
export function createKeyCache(deps: {
  db: Db;
  kv: KeyValueStore;
  clock: Clock;
  log: Logger;
  namespace: string;
}): KeyCache {
  const { db, kv, clock, log } = deps;
  const channel = `${deps.namespace}:access:api-keys`;
  const versionKey = `${deps.namespace}:access:api-keys:version`;
  const entries = new Map<string, Entry>();
  const byKey = new Map<string, Set<string>>();
  const loading = new Map<string, Promise<Entry>>();
  const lastUsed = new Map<string, { orgId: string; keyId: string; atMs: number }>();
  /** Invalidations this replica could not announce yet; retried by the poll. */
  const unannounced: Invalidation[] = [];
  let seenVersion = 0;
  /** Bumped by every drop, so a load that raced an invalidation is not cached. */
  let generation = 0;
  let invalidationWorks = false;
  let unsubscribe: (() => Promise<void>) | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const forget = (hash: string) => {
    const entry = entries.get(hash);
    entries.delete(hash);
    if (entry?.key) byKey.get(entry.key.id)?.delete(hash);
  };
  const dropAll = () => {
    generation += 1;
    entries.clear();
    byKey.clear();
  };
  const drop = (target: Invalidation) => {
    generation += 1;
    if ('keyId' in target) {
      for (const hash of byKey.get(target.keyId) ?? []) entries.delete(hash);
      byKey.delete(target.keyId);
      return;
    }
    for (const [hash, entry] of entries) if (entry.key?.orgId === target.orgId) forget(hash);
  };

  const load = async (hash: string, secretHash: Buffer): Promise<Entry> => {
    const startedIn = generation;
    const row = await findKeyBySecretHash(db, secretHash);
    const loadedAtMs = clock.nowMs();
    const nowMs = loadedAtMs;
    const secretEnd = row?.secret_expires_at?.getTime();
    const working = row && !row.revoked_at && (secretEnd === undefined || secretEnd > nowMs);
    const keyEnd = row?.expires_at?.getTime();
    const entry: Entry = {
      loadedAtMs,
      key: working
        ? {
            id: row.id,
            orgId: row.org_id,
            environment: row.environment,
            permissions: new Set(row.scopes as Permission[]),
            expiresAtMs:
              keyEnd === undefined
                ? secretEnd
                : secretEnd === undefined
                  ? keyEnd
                  : Math.min(keyEnd, secretEnd),
            rateLimitPerMinute: row.rate_limit_per_minute,
            orgRateLimitPerMinute: row.org_rate_limit_per_minute,
            ipAllowlist: allowlistOrUndefined(row.ip_allowlist),
            orgAdminIpAllowlist: allowlistOrUndefined(row.org_admin_ip_allowlist),
          }
        : null,
    };
    if (startedIn !== generation) return entry;
    if (entries.size >= KEY_CACHE_MAX_ENTRIES) {
      const oldest = entries.keys().next().value;
      if (oldest !== undefined) forget(oldest);
    }
    entries.set(hash, entry);
    if (entry.key) {
      const hashes = byKey.get(entry.key.id) ?? new Set<string>();
      hashes.add(hash);
      byKey.set(entry.key.id, hashes);
    }
    return entry;
  };

  const fresh = (entry: Entry, nowMs: number) => {
    const age = nowMs - entry.loadedAtMs;
    return age < (invalidationWorks ? KEY_CACHE_TTL_MS : KEY_REVOCATION_BOUND_MS);
  };

  const announce = async (target: Invalidation) => {
    const version = await kv.increment(versionKey, 1);
    await kv.publish(channel, JSON.stringify({ version, ...target }));
  };

  const poll = async () => {
    try {
      while (unannounced.length > 0) {
        await announce(unannounced[0]!);
        unannounced.shift();
      }
      const version = Number((await kv.get(versionKey)) ?? 0);
      if (version > seenVersion) {
        // A change this replica heard no message for: nothing cached can be trusted.
        dropAll();
        seenVersion = version;
      }
      if (!invalidationWorks && unsubscribe) {
        dropAll();
        invalidationWorks = true;
        log.info('API key invalidation works: cached keys are trusted for a minute');
      }
    } catch (error) {
      if (invalidationWorks) {
        log.warn(
          { err: error },
          'API key invalidation unavailable: re-reading keys from Postgres every second',
        );
      }
      invalidationWorks = false;
    }
  };

  const subscribe = async () => {
    while (!closed && !unsubscribe) {
      try {
        unsubscribe = await kv.subscribe(channel, (message) => {
          try {
            const parsed = JSON.parse(message) as { version: number } & Partial<{
              keyId: string;
              orgId: string;
            }>;
            seenVersion = Math.max(seenVersion, parsed.version);
            if (parsed.keyId) drop({ keyId: parsed.keyId });
            else if (parsed.orgId) drop({ orgId: parsed.orgId });
          } catch {
            dropAll();
          }
        });
      } catch (error) {
        log.warn({ err: error }, 'cannot subscribe to API key invalidations yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, KEY_REVOCATION_BOUND_MS).unref());
      }
    }
  };

  const flushLastUsed = async () => {
    if (lastUsed.size === 0) return;
    const uses = [...lastUsed.values()].map(({ orgId, keyId, atMs }) => ({
      orgId,
      keyId,
      at: new Date(atMs),
    }));
    lastUsed.clear();
    try {
      await recordKeysLastUsed(db, uses);
    } catch (error) {
      log.warn({ err: error, keys: uses.length }, 'could not record API key last-used times');
    }
  };

  return {
    peek(hash) {
      const cached = entries.get(hash);
      return cached && fresh(cached, clock.nowMs()) ? cached.key : undefined;
    },

    async lookup(hash) {
      const nowMs = clock.nowMs();
      const cached = entries.get(hash);
      if (cached && fresh(cached, nowMs)) return cached.key;
      let pending = loading.get(hash);
      if (!pending) {
        pending = load(hash, Buffer.from(hash, 'base64')).finally(() => loading.delete(hash));
        loading.set(hash, pending);
      }
      return (await pending).key;
    },

    async invalidate(target) {
      drop(target);
      try {
        await announce(target);
      } catch (error) {
        log.warn({ err: error, ...target }, 'could not announce an API key change yet; will retry');
        unannounced.push(target);
      }
    },

    noteUse(key, atMs) {
      // One entry per key between flushes, updated in place: no allocation per request.
      const noted = lastUsed.get(key.id);
      if (noted) noted.atMs = Math.max(noted.atMs, atMs);
      else lastUsed.set(key.id, { orgId: key.orgId, keyId: key.id, atMs });
    },

    flushLastUsed,

    async start() {
      // Subscribing waits for Redis; the app starts anyway and trusts the cache only once it works.
      void subscribe().then(poll);
      pollTimer = setInterval(() => void poll(), KEY_REVOCATION_POLL_MS);
      pollTimer.unref();
      flushTimer = setInterval(() => void flushLastUsed(), LAST_USED_FLUSH_INTERVAL_MS);
      flushTimer.unref();
    },

    async close() {
      closed = true;
      clearInterval(pollTimer);
      clearInterval(flushTimer);
      await flushLastUsed();
      await unsubscribe?.().catch(() => {});
      dropAll();
    },
  };
}
