import type { Clock } from '../../infra/clock.ts';
import type { Database } from '../../infra/db/database.ts';
import { type Page, pageOf } from '../../infra/http/pagination.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { EventsService } from '../events/index.ts';
import { parseAllowlist } from './domain/cidr.ts';
import { holdsAll, isKnownPermission, isSessionOnly } from './domain/permissions.ts';
import {
  type ApiKeyEnvironment,
  generateApiKey,
  hashToken,
  keyHint,
  parseApiKey,
  tokenDigest,
} from './domain/tokens.ts';
import { API_KEY_CREATED, API_KEY_REVOKED, API_KEY_ROLLED } from './events.ts';
import type { CachedKey, KeyCache } from './key-cache.ts';
import type { Actor, Result } from './service.ts';
import * as store from './store.ts';

/** Longest grace a rolled key's old secret may keep working. */
export const MAX_ROLL_GRACE_SECONDS = 7 * 24 * 60 * 60;

export interface ApiKey {
  readonly id: string;
  readonly orgId: string;
  readonly name: string;
  readonly environment: ApiKeyEnvironment;
  readonly scopes: readonly string[];
  readonly expiresAt: Date | null;
  readonly rateLimitPerMinute: number | null;
  readonly ipAllowlist: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly lastUsedAt: Date | null;
  readonly createdBy: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly revokedAt: Date | null;
  /** The secrets that work now: one, or two during a roll's grace. Hints only, never secrets. */
  readonly secrets: readonly { hint: string; createdAt: Date; expiresAt: Date | null }[];
}

export interface ApiKeySettings {
  readonly name: string;
  readonly scopes: readonly string[];
  readonly expiresAt?: Date | null;
  readonly rateLimitPerMinute?: number | null;
  readonly ipAllowlist?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
}

export type KeyVerification =
  | { ok: true; key: CachedKey }
  | { ok: false; code: 'UNAUTHENTICATED' | 'IP_NOT_ALLOWED'; detail: string };

const failure = (code: 'VALIDATION_FAILED' | 'FORBIDDEN' | 'NOT_FOUND', detail: string) =>
  ({ ok: false, code, detail }) as const;

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

export function createApiKeyService(deps: {
  database: Database;
  clock: Clock;
  newId: IdGenerator;
  events: EventsService;
  cache: KeyCache;
}) {
  const { database, clock, newId, events, cache } = deps;
  const db = database.db;

  const present = (
    row: store.ApiKeyRow,
    secrets: readonly { key_id: string; hint: string; created_at: Date; expires_at: Date | null }[],
  ): ApiKey => ({
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    environment: row.environment,
    scopes: row.scopes,
    expiresAt: row.expires_at,
    rateLimitPerMinute: row.rate_limit_per_minute,
    ipAllowlist: row.ip_allowlist,
    metadata: row.metadata,
    lastUsedAt: row.last_used_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    revokedAt: row.revoked_at,
    secrets: row.revoked_at
      ? []
      : secrets
          .filter((secret) => secret.key_id === row.id)
          .map((secret) => ({
            hint: secret.hint,
            createdAt: secret.created_at,
            expiresAt: secret.expires_at,
          })),
  });

  const withSecrets = async (rows: readonly store.ApiKeyRow[]) => {
    const secrets = await store.listKeySecrets(
      db,
      rows[0]?.org_id ?? '',
      rows.map((row) => row.id),
      clock.now(),
    );
    return rows.map((row) => present(row, secrets));
  };

  /** Scopes must be known, grantable to keys, and held by whoever grants them. */
  const checkScopes = (actor: Actor, scopes: readonly string[]) => {
    const unknown = scopes.filter((scope) => !isKnownPermission(scope) || isSessionOnly(scope));
    if (unknown.length > 0)
      return failure('VALIDATION_FAILED', `Not an API key scope: ${unknown.join(', ')}`);
    if (!holdsAll(actor.permissions, scopes as never)) {
      return failure('FORBIDDEN', 'A key can only be given scopes you hold yourself');
    }
    return undefined;
  };

  const checkSettings = (settings: Partial<ApiKeySettings>) => {
    if (settings.ipAllowlist) {
      const parsed = parseAllowlist(settings.ipAllowlist);
      if (!parsed.ok) {
        return failure('VALIDATION_FAILED', `Not an IP address or CIDR range: ${parsed.invalid.join(', ')}`);
      }
    }
    if (settings.expiresAt && settings.expiresAt <= clock.now()) {
      return failure('VALIDATION_FAILED', 'expiresAt must be in the future');
    }
    return undefined;
  };

  const normalisedAllowlist = (entries: readonly string[] | undefined) => {
    if (entries === undefined) return undefined;
    const parsed = parseAllowlist(entries);
    return parsed.ok ? [...parsed.allowlist.entries] : undefined;
  };

  /** The checks of a found key: expiry, then the key's IP allowlist; notes the use. */
  const admit = (key: CachedKey | null, ip: string): KeyVerification => {
    if (!key)
      return { ok: false, code: 'UNAUTHENTICATED', detail: 'The API key is not valid or was revoked' };
    const nowMs = clock.nowMs();
    if (key.expiresAtMs !== undefined && key.expiresAtMs <= nowMs) {
      return { ok: false, code: 'UNAUTHENTICATED', detail: 'The API key expired' };
    }
    if (key.ipAllowlist && !key.ipAllowlist.allows(ip)) {
      return { ok: false, code: 'IP_NOT_ALLOWED', detail: `This API key may not be used from ${ip}` };
    }
    cache.noteUse(key, nowMs);
    return { ok: true, key };
  };

  return {
    /** A new key; its secret is in the result and nowhere else, ever. */
    async create(
      actor: Actor,
      orgId: string,
      input: ApiKeySettings & { environment: ApiKeyEnvironment },
    ): Promise<Result<{ apiKey: ApiKey; secret: string }>> {
      const refused = checkScopes(actor, input.scopes) ?? checkSettings(input);
      if (refused) return refused;
      const now = clock.now();
      const secret = generateApiKey(input.environment);
      const id = newId('key');
      const row = await database.transaction(async (tx) => {
        const inserted = await store.insertApiKey(
          tx,
          {
            org_id: orgId,
            id,
            name: input.name,
            environment: input.environment,
            scopes: [...new Set(input.scopes)],
            expires_at: input.expiresAt ?? null,
            rate_limit_per_minute: input.rateLimitPerMinute ?? null,
            ip_allowlist: normalisedAllowlist(input.ipAllowlist) ?? [],
            metadata: { ...input.metadata },
            last_used_at: null,
            created_by: actor.userId ?? null,
            created_at: now,
            updated_at: now,
            revoked_at: null,
          },
          {
            secret_hash: hashToken(secret),
            org_id: orgId,
            key_id: id,
            hint: keyHint(secret),
            created_at: now,
            expires_at: null,
          },
        );
        await events.emit(tx, orgId, [
          { type: API_KEY_CREATED.type, payload: { keyId: id, name: input.name, scopes: inserted.scopes } },
        ]);
        return inserted;
      });
      const [apiKey] = await withSecrets([row]);
      return { ok: true, apiKey: apiKey!, secret };
    },

    async list(orgId: string, page: store.PageQuery & { includeRevoked: boolean }): Promise<Page<ApiKey>> {
      const rows = await store.listApiKeys(db, orgId, page);
      const keys = await withSecrets(rows);
      return pageOf(
        keys,
        page.limit,
        (key) => key.id,
        (key) => key,
      );
    },

    async get(orgId: string, id: string): Promise<ApiKey | undefined> {
      const row = await store.findApiKey(db, orgId, id);
      return row && (await withSecrets([row]))[0];
    },

    async update(
      actor: Actor,
      orgId: string,
      id: string,
      changes: Partial<ApiKeySettings>,
    ): Promise<Result<{ apiKey: ApiKey }>> {
      const refused =
        (changes.scopes ? checkScopes(actor, changes.scopes) : undefined) ?? checkSettings(changes);
      if (refused) return refused;
      const row = await store.updateApiKey(
        db,
        orgId,
        id,
        {
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.scopes === undefined ? {} : { scopes: [...new Set(changes.scopes)] }),
          ...(changes.expiresAt === undefined ? {} : { expires_at: changes.expiresAt }),
          ...(changes.rateLimitPerMinute === undefined
            ? {}
            : { rate_limit_per_minute: changes.rateLimitPerMinute }),
          ...(changes.ipAllowlist === undefined
            ? {}
            : { ip_allowlist: normalisedAllowlist(changes.ipAllowlist)! }),
          ...(changes.metadata === undefined ? {} : { metadata: { ...changes.metadata } }),
        },
        clock.now(),
      );
      if (!row) return failure('NOT_FOUND', `No active API key ${id}`);
      await cache.invalidate({ keyId: id });
      const [apiKey] = await withSecrets([row]);
      return { ok: true, apiKey: apiKey! };
    },

    /**
     * A new secret for the key, same id and settings. Every secret that works now keeps working
     * for `graceSeconds` (0: stops at once), so deployments can switch over without downtime.
     */
    async roll(
      orgId: string,
      id: string,
      graceSeconds: number,
    ): Promise<Result<{ apiKey: ApiKey; secret: string; graceEndsAt: Date }>> {
      const now = clock.now();
      const graceEndsAt = new Date(now.getTime() + graceSeconds * 1000);
      const rolled = await database.transaction(async (tx) => {
        const row = await tx
          .selectFrom('api_keys')
          .selectAll()
          .where('org_id', '=', orgId)
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .forUpdate()
          .executeTakeFirst();
        if (!row) return undefined;
        const secret = generateApiKey(row.environment);
        await store.rollApiKeySecret(
          tx,
          {
            secret_hash: hashToken(secret),
            org_id: orgId,
            key_id: id,
            hint: keyHint(secret),
            created_at: now,
            expires_at: null,
          },
          graceEndsAt,
          now,
        );
        await events.emit(tx, orgId, [
          { type: API_KEY_ROLLED.type, payload: { keyId: id, graceEndsAt: graceEndsAt.toISOString() } },
        ]);
        return { row, secret };
      });
      if (!rolled) return failure('NOT_FOUND', `No active API key ${id}`);
      await cache.invalidate({ keyId: id });
      const [apiKey] = await withSecrets([rolled.row]);
      return { ok: true, apiKey: apiKey!, secret: rolled.secret, graceEndsAt };
    },

    /** Stops the key (all its secrets) everywhere; false when there is no such active key. */
    async revoke(orgId: string, id: string): Promise<boolean> {
      const revoked = await database.transaction(async (tx) => {
        const done = await store.revokeApiKey(tx, orgId, id, clock.now());
        if (done) await events.emit(tx, orgId, [{ type: API_KEY_REVOKED.type, payload: { keyId: id } }]);
        return done;
      });
      if (revoked) await cache.invalidate({ keyId: id });
      return revoked;
    },

    /** The hot path: format and checksum first, then the cache; Postgres only on a miss. */
    async verify(secret: string, ip: string): Promise<KeyVerification> {
      const parsed = parseApiKey(secret);
      if (!parsed.ok) return { ok: false, code: 'UNAUTHENTICATED', detail: `The API key ${parsed.reason}` };
      return admit(await cache.lookup(tokenDigest(secret)), ip);
    },

    /**
     * `verify` answered from the cache alone, without a promise, when the cache holds the
     * secret's answer; undefined when `verify` must load it.
     */
    verifyCached(secret: string, ip: string): KeyVerification | undefined {
      const parsed = parseApiKey(secret);
      if (!parsed.ok) return { ok: false, code: 'UNAUTHENTICATED', detail: `The API key ${parsed.reason}` };
      const key = cache.peek(tokenDigest(secret));
      return key === undefined ? undefined : admit(key, ip);
    },
  };
}
