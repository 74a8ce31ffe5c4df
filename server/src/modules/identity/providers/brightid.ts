import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { type ProviderHttp, providerUrl, throwIfRetryable } from './http.ts';
import { type BrightIdInput, type BrightIdSettings, finding, type ProviderAdapter } from './types.ts';

/** The public BrightID node, behind its API prefix. A self-hosted node is `http://host/brightid/v6`. */
export const BRIGHTID_DEFAULT_BASE_URL = 'https://app.brightid.org/node/v6';
/** BrightID node `errorNum`s Keel maps (BrightID-Node `errors.js`). */
export const BRIGHTID_ERRORS = {
  NOT_VERIFIED: 3,
  NOT_SPONSORED: 4,
  APP_NOT_FOUND: 12,
  APP_USER_ID_NOT_FOUND: 61,
} as const;

interface VerificationEntry {
  unique?: boolean;
  app?: string;
  appUserId?: string;
  verification?: string;
  verificationHash?: string;
  sig?: unknown;
  timestamp?: number;
  publicKey?: string;
}

/** The bytes the node signs: `app,appUserId[,verificationHash][,timestamp]`. */
export function brightIdSignedMessage(entry: {
  app: string;
  appUserId: string;
  verificationHash?: string;
  timestamp?: number;
}): string {
  let message = `${entry.app},${entry.appUserId}`;
  if (entry.verificationHash) message += `,${entry.verificationHash}`;
  if (entry.timestamp) message += `,${entry.timestamp}`;
  return message;
}

/** Node keys in use, parsed once: node:crypto verifies Ed25519 natively, given a KeyObject. */
const nodeKeys = new Map<string, KeyObject>();
const MAX_NODE_KEYS = 1_000;

/** A raw 32-byte Ed25519 public key (base64) as a KeyObject, through its JWK form. */
export function ed25519PublicKey(publicKeyBase64: string): KeyObject | undefined {
  const cached = nodeKeys.get(publicKeyBase64);
  if (cached) return cached;
  const raw = Buffer.from(publicKeyBase64, 'base64');
  if (raw.length !== 32) return undefined;
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
  if (nodeKeys.size >= MAX_NODE_KEYS) nodeKeys.clear();
  nodeKeys.set(publicKeyBase64, key);
  return key;
}

function verifySignature(entry: VerificationEntry, publicKeyBase64: string): boolean {
  if (typeof entry.sig !== 'string' || !entry.app || !entry.appUserId) return false;
  try {
    const signature = Buffer.from(entry.sig, 'base64');
    const publicKey = ed25519PublicKey(publicKeyBase64);
    if (signature.length !== 64 || !publicKey) return false;
    const message = Buffer.from(
      brightIdSignedMessage({
        app: entry.app,
        appUserId: entry.appUserId,
        verificationHash: entry.verificationHash,
        timestamp: entry.timestamp,
      }),
    );
    // Ed25519 takes no digest: the algorithm argument is null.
    return verify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * BrightID node v6: `GET {base}/verifications/{app}/{appUserId}?signed=nacl&timestamp=seconds
 * [&includeHash=true]`. The answer is `{data: [{unique, app, appUserId, verification,
 * verificationHash?, sig, timestamp?, publicKey?}]}`, one entry per verification the app accepts.
 * - An entry (the configured `verification`, or any) with `unique: true` whose `sig` is a valid
 *   Ed25519 signature by the configured node key over `app,appUserId[,verificationHash]
 *   [,timestamp]` → `passed`; the identifier is the appUserId as the node spelled it.
 * - A unique entry whose signature does not verify, or is by another key → `error: invalid_signature`.
 * - Only non-unique entries → `failed: not_unique`.
 * - 404 with `errorNum` 61 (unknown appUserId) → `not_found`; 404 `errorNum` 12 → `error:
 *   app_not_found`; 403 `errorNum` 3 → `failed: not_verified`; 403 `errorNum` 4 → `failed:
 *   not_sponsored`; 429 and 5xx are retried, then `unavailable`.
 *
 * Differences from PROTOCOLS.md, checked against BrightID-Node (`foxx/brightid/index.js`,
 * `verificationsGet`): the path sits under the node's API prefix (`/brightid/v6` on a node,
 * `/node/v6` on app.brightid.org), so the base URL carries it; `verificationHash` is only in the
 * answer (and in the signed message) when asked for with `includeHash`; a non-unique entry has
 * `sig: ""`; for apps with `idsAsHex` the node lower-cases the appUserId before signing, so Keel
 * verifies against the appUserId the node returned; errors are ArangoDB Foxx bodies
 * `{error: true, errorNum, errorMessage, code}`.
 */
export function createBrightIdAdapter(deps: {
  http: ProviderHttp;
}): ProviderAdapter<BrightIdSettings, BrightIdInput> {
  return {
    name: 'brightid',
    cacheKey: (input) => input.appUserId,
    async check(context, input) {
      const { config } = context;
      const { settings } = config;
      const now = context.now();
      const answer = await deps.http.request({
        method: 'GET',
        url: providerUrl(
          config.baseUrl ?? BRIGHTID_DEFAULT_BASE_URL,
          `/verifications/${encodeURIComponent(settings.app)}/${encodeURIComponent(input.appUserId)}`,
          { signed: 'nacl', timestamp: 'seconds', ...(settings.includeHash ? { includeHash: 'true' } : {}) },
        ),
        signal: context.signal,
      });
      throwIfRetryable(answer, now.getTime());
      const body = (answer.json ?? {}) as { data?: unknown; errorNum?: unknown; errorMessage?: unknown };
      const detail = {
        status: answer.status,
        errorNum: body.errorNum ?? null,
        errorMessage: body.errorMessage ?? null,
      };
      if (answer.status !== 200) {
        if (body.errorNum === BRIGHTID_ERRORS.APP_USER_ID_NOT_FOUND)
          return finding(now, { outcome: 'not_found', errorCode: 'unknown_app_user_id', detail });
        if (body.errorNum === BRIGHTID_ERRORS.APP_NOT_FOUND)
          return finding(now, { outcome: 'error', errorCode: 'app_not_found', detail });
        if (body.errorNum === BRIGHTID_ERRORS.NOT_VERIFIED)
          return finding(now, { outcome: 'failed', errorCode: 'not_verified', detail });
        if (body.errorNum === BRIGHTID_ERRORS.NOT_SPONSORED)
          return finding(now, { outcome: 'failed', errorCode: 'not_sponsored', detail });
        return finding(now, { outcome: 'error', errorCode: 'unexpected_response', detail });
      }
      if (!Array.isArray(body.data))
        return finding(now, { outcome: 'error', errorCode: 'unexpected_response', detail });
      const entries = (body.data as VerificationEntry[]).filter(
        (entry) => !settings.verification || entry.verification === settings.verification,
      );
      const unique = entries.filter((entry) => entry.unique === true);
      if (unique.length === 0)
        return finding(now, {
          outcome: 'failed',
          errorCode: 'not_unique',
          detail: { verifications: entries.map((entry) => entry.verification) },
        });
      const signed = unique.find((entry) => verifySignature(entry, settings.nodePublicKey));
      if (!signed)
        return finding(now, {
          outcome: 'error',
          errorCode: 'invalid_signature',
          detail: { verifications: unique.map((entry) => entry.verification) },
        });
      return finding(signed.timestamp ? new Date(signed.timestamp * 1000) : now, {
        outcome: 'passed',
        identifier: signed.appUserId!,
        detail: { verification: signed.verification, app: signed.app },
      });
    },
  };
}
