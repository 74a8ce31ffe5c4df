import { type ProviderHttp, providerUrl, throwIfRetryable } from './http.ts';
import { type AddressInput, finding, type PassportSettings, type ProviderAdapter } from './types.ts';

export const PASSPORT_DEFAULT_BASE_URL = 'https://api.passport.xyz';
/** Human Passport's recommended passing threshold, used when the answer carries none. */
export const PASSPORT_RECOMMENDED_THRESHOLD = 20;

const date = (value: unknown): Date | null => {
  if (typeof value !== 'string') return null;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
};

/**
 * Human Passport (formerly Gitcoin Passport), Stamps API v2: `GET {base}/v2/stamps/{scorer_id}/
 * score/{address}` with `X-API-KEY`. The 200 answer is `{address, score: "33.538", passing_score,
 * last_score_timestamp, expiration_timestamp, threshold, error, stamps}`.
 * - 200, `passing_score: true` → `passed`; `false` → `failed: below_threshold`. The score (a
 *   decimal string) becomes a number; the policy may set its own `minScore` on it.
 * - 200 with a non-null `error` → `error: passport_error` (the message is kept in the detail).
 * - 400 (a malformed address) → `error: invalid_request`; 401/403 → `error: provider_unauthorized`
 *   (bad API key); 404 → `error: scorer_not_found`; 429 and 5xx are retried, then `unavailable`.
 * The identifier is the address in lower case; `last_score_timestamp` is when the fact was
 * observed and `expiration_timestamp` when its first stamp lapses.
 *
 * Differences from PROTOCOLS.md, checked against docs.passport.xyz (API v2 quick start, data
 * dictionary): `threshold` is a decimal string ("20"), `passing_score` is the result against it;
 * the quick-start example shows the stamps as `stamp_scores: {name: "0.516"}` where PROTOCOLS.md
 * has `stamps: {name: {score, dedup, expiration_date}}`, so Keel reads either; errors carry
 * `{detail}` rather than a coded body, so Keel maps them by HTTP status.
 */
export function createPassportAdapter(deps: {
  http: ProviderHttp;
}): ProviderAdapter<PassportSettings, AddressInput> {
  return {
    name: 'passport',
    cacheKey: (input) => input.address.toLowerCase(),
    async check(context, input) {
      const { config } = context;
      const now = context.now();
      const address = input.address.toLowerCase();
      const answer = await deps.http.request({
        method: 'GET',
        url: providerUrl(
          config.baseUrl ?? PASSPORT_DEFAULT_BASE_URL,
          `/v2/stamps/${encodeURIComponent(config.settings.scorerId)}/score/${address}`,
        ),
        headers: config.apiKey ? { 'X-API-KEY': config.apiKey } : {},
        signal: context.signal,
      });
      throwIfRetryable(answer, now.getTime());
      const body = (answer.json ?? {}) as Record<string, unknown>;
      const detail = { status: answer.status, detail: body.detail ?? body.error ?? null };
      if (answer.status === 401 || answer.status === 403)
        return finding(now, { outcome: 'error', errorCode: 'provider_unauthorized', detail });
      if (answer.status === 404)
        return finding(now, { outcome: 'error', errorCode: 'scorer_not_found', detail });
      if (answer.status === 400)
        return finding(now, { outcome: 'error', errorCode: 'invalid_request', detail });
      if (answer.status !== 200 || typeof body.score !== 'string')
        return finding(now, { outcome: 'error', errorCode: 'unexpected_response', detail });
      if (body.error !== null && body.error !== undefined && body.error !== '')
        return finding(now, { outcome: 'error', errorCode: 'passport_error', detail });
      const score = Number(body.score);
      const threshold =
        typeof body.threshold === 'string' ? Number(body.threshold) : PASSPORT_RECOMMENDED_THRESHOLD;
      const passing = typeof body.passing_score === 'boolean' ? body.passing_score : score >= threshold;
      return finding(date(body.last_score_timestamp) ?? now, {
        outcome: passing ? 'passed' : 'failed',
        errorCode: passing ? null : 'below_threshold',
        score: Number.isFinite(score) ? score : null,
        identifier: address,
        providerExpiresAt: date(body.expiration_timestamp),
        detail: {
          threshold,
          stamps: Object.keys((body.stamps ?? body.stamp_scores ?? {}) as object).length,
        },
      });
    },
  };
}
