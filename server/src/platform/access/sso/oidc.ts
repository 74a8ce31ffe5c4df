import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import * as client from 'openid-client';
import type { Clock } from '../../../infra/clock.ts';
import type { SsrfGuard } from '../../../infra/http/ssrf.ts';

/** Any one HTTP call to an identity provider (discovery, token, userinfo, JWKS) fails after this. */
export const OIDC_HTTP_TIMEOUT_MS = 10_000;
/** Discovered provider metadata is reused this long before it is fetched again. */
export const OIDC_DISCOVERY_CACHE_MS = 10 * 60 * 1000;
/** Providers kept in the discovery cache at once (one per org connection in use). */
export const OIDC_DISCOVERY_CACHE_ENTRIES = 1_000;
export const OIDC_SCOPES = 'openid email profile';

export interface OidcClientSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** Who the provider says signed in: the `sub` of its `iss`, and the claims Keel uses. */
export interface OidcIdentity {
  readonly issuer: string;
  readonly subject: string;
  readonly email: string | undefined;
  readonly emailVerified: boolean;
  readonly name: string | undefined;
}

export class OidcError extends Error {
  constructor(
    readonly kind: 'discovery' | 'login',
    message: string,
  ) {
    super(message);
    this.name = 'OidcError';
  }
}

/**
 * The adapter to any OpenID Connect provider, configured by issuer URL (discovery at
 * `<issuer>/.well-known/openid-configuration`), through `openid-client` (v6, which runs on Node
 * 20): authorization code flow with PKCE (S256), state and nonce; ID token validation (signature
 * against the provider's JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`); claims from the userinfo
 * endpoint when the ID token carries no email.
 *
 * Every request goes through the SSRF guard: an org admin chooses the issuer, so its hosts must
 * resolve to public addresses (or ones the operator allowlists in SSRF_ALLOWLIST). The check
 * resolves the host before each request; it does not pin the address for the connection.
 */
export function createOidcClient(deps: { clock: Clock; ssrf: SsrfGuard }) {
  const cache = new Map<string, { configuration: client.Configuration; expiresAtMs: number }>();

  const guardedFetch: client.CustomFetch = async (url, options) => {
    const target = new URL(url);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const addresses = await lookup(host, { all: true });
    const blocked = addresses.find((entry) => !deps.ssrf.isAllowed(entry.address));
    if (blocked)
      throw new OidcError('discovery', `${host} resolves to ${blocked.address}, which is not public`);
    return fetch(url, { ...options, signal: AbortSignal.timeout(OIDC_HTTP_TIMEOUT_MS) } as RequestInit);
  };

  async function configurationOf(settings: OidcClientSettings): Promise<client.Configuration> {
    const key = createHash('sha256')
      .update(`${settings.issuer}\n${settings.clientId}\n${settings.clientSecret}`)
      .digest('hex');
    const nowMs = deps.clock.now().getTime();
    const cached = cache.get(key);
    if (cached && cached.expiresAtMs > nowMs) return cached.configuration;
    const issuer = new URL(settings.issuer);
    let configuration: client.Configuration;
    try {
      configuration = await client.discovery(
        issuer,
        settings.clientId,
        settings.clientSecret,
        client.ClientSecretBasic(settings.clientSecret),
        {
          [client.customFetch]: guardedFetch,
          // Plain HTTP is accepted only for a provider on this machine (development and tests).
          ...(issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {}),
        },
      );
    } catch (error) {
      throw new OidcError('discovery', describe(error));
    }
    if (cache.size >= OIDC_DISCOVERY_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, { configuration, expiresAtMs: nowMs + OIDC_DISCOVERY_CACHE_MS });
    return configuration;
  }

  return {
    /** Fetches and checks the discovery document; throws OidcError('discovery') if unusable. */
    async discover(settings: OidcClientSettings): Promise<void> {
      const configuration = await configurationOf(settings);
      const metadata = configuration.serverMetadata();
      if (!metadata.authorization_endpoint || !metadata.token_endpoint || !metadata.jwks_uri) {
        throw new OidcError(
          'discovery',
          'the discovery document lacks an authorization, token or JWKS endpoint',
        );
      }
    },

    async authorizationUrl(
      settings: OidcClientSettings,
      request: { redirectUri: string; state: string; nonce: string; codeVerifier: string },
    ): Promise<URL> {
      const configuration = await configurationOf(settings);
      return client.buildAuthorizationUrl(configuration, {
        redirect_uri: request.redirectUri,
        scope: OIDC_SCOPES,
        state: request.state,
        nonce: request.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(request.codeVerifier),
        code_challenge_method: 'S256',
      });
    },

    /**
     * Validates the provider's answer at `callbackUrl` (state, `iss`), redeems the code with the
     * PKCE verifier, validates the ID token (and its nonce) and returns who signed in.
     */
    async finish(
      settings: OidcClientSettings,
      callbackUrl: URL,
      checks: { state: string; nonce: string; codeVerifier: string },
    ): Promise<OidcIdentity> {
      const configuration = await configurationOf(settings);
      try {
        const tokens = await client.authorizationCodeGrant(configuration, callbackUrl, {
          pkceCodeVerifier: checks.codeVerifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true,
        });
        const claims = tokens.claims();
        if (!claims) throw new OidcError('login', 'the provider returned no ID token');
        let email = typeof claims.email === 'string' ? claims.email : undefined;
        let emailVerified = claims.email_verified === true;
        let name = typeof claims.name === 'string' ? claims.name : undefined;
        if (email === undefined) {
          // Providers may keep profile claims out of the ID token (OIDC Core §5.4): ask userinfo.
          const info = await client.fetchUserInfo(configuration, tokens.access_token, claims.sub);
          email = typeof info.email === 'string' ? info.email : undefined;
          emailVerified = info.email_verified === true;
          name ??= typeof info.name === 'string' ? info.name : undefined;
        }
        return { issuer: claims.iss, subject: claims.sub, email, emailVerified, name };
      } catch (error) {
        if (error instanceof OidcError) throw error;
        throw new OidcError('login', describe(error));
      }
    },
  };
}

export type OidcClient = ReturnType<typeof createOidcClient>;

function describe(error: unknown): string {
  if (error instanceof client.AuthorizationResponseError) {
    return `the provider answered ${error.error}${error.error_description ? `: ${error.error_description}` : ''}`;
  }
  if (error instanceof client.ResponseBodyError) {
    return `the provider answered ${error.error}${error.error_description ? `: ${error.error_description}` : ''}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${message}${cause}`;
}
