import { randomNonce, randomPKCECodeVerifier, randomState } from 'openid-client';
import type { Clock } from '../../../infra/clock.ts';
import type { Database } from '../../../infra/db/database.ts';
import type { ErrorCode } from '../../../infra/http/errors.ts';
import type { IdGenerator } from '../../../infra/ids.ts';
import type { SecretBox } from '../../../infra/keystore/secret-box.ts';
import type { Logger } from '../../../infra/observability/logger.ts';
import { holdsAll, type Role, rolePermissions } from '../domain/permissions.ts';
import { hashToken } from '../domain/tokens.ts';
import type { AccessService, Actor, RequestOrigin, Session, User } from '../service.ts';
import { type OidcClient, type OidcClientSettings, OidcError } from './oidc.ts';
import * as store from './store.ts';

/** A person has this long at the identity provider before the sign-in must start again. */
export const SSO_LOGIN_TTL_MS = 10 * 60 * 1000;
/** The session `method` of an SSO sign-in. */
export const SSO_SESSION_METHOD = 'oidc';
/** Longest `returnTo` path kept for after the sign-in. */
export const SSO_RETURN_TO_MAX_LENGTH = 512;
export const SSO_CALLBACK_PATH = '/v1/auth/sso/callback';
export type JitRole = Exclude<Role, 'owner'>;

export type Result<T> = ({ ok: true } & T) | { ok: false; code: ErrorCode; detail: string };
const failure = (code: ErrorCode, detail: string) => ({ ok: false, code, detail }) as const;

export interface SsoConnection {
  readonly id: string;
  readonly orgId: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly emailDomains: readonly string[];
  readonly defaultRole: JitRole;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const toConnection = (row: store.SsoConnectionRow): SsoConnection => ({
  id: row.id,
  orgId: row.org_id,
  issuer: row.issuer,
  clientId: row.client_id,
  emailDomains: row.email_domains,
  defaultRole: row.default_role,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export type SsoOutcome =
  | { status: 'ok'; user: User; session: Session; token: string; returnTo: string }
  | { status: 'mfa_required'; mfaToken: string; expiresAt: Date; returnTo: string };

/**
 * A path on this server to send the browser to after sign-in: absolute paths only, so the
 * parameter cannot become an open redirect to another site.
 */
export function safeReturnTo(value: string | undefined): string {
  if (!value || value.length > SSO_RETURN_TO_MAX_LENGTH) return '/';
  if (!value.startsWith('/') || value.startsWith('//') || value.includes('\\')) return '/';
  return value;
}

/**
 * An issuer must be HTTPS; plain HTTP only for a provider on this machine (development, tests).
 * The SSRF guard still decides whether the host may be reached at all.
 */
export function checkIssuer(raw: string): { ok: true; issuer: string } | { ok: false; detail: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, detail: 'issuer is not a URL' };
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    return { ok: false, detail: 'issuer must be an https:// URL' };
  }
  if (url.search || url.hash || url.username || url.password) {
    return { ok: false, detail: 'issuer must have no query, fragment or credentials' };
  }
  return { ok: true, issuer: raw.replace(/\/$/, '') };
}

/** Lower-cased, unique domain names (`acme.example`); undefined when one is not a domain name. */
export function normalizeDomains(domains: readonly string[]): string[] | undefined {
  const normalized = [...new Set(domains.map((domain) => domain.trim().toLowerCase()))];
  const pattern = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
  return normalized.length > 0 && normalized.every((domain) => pattern.test(domain)) ? normalized : undefined;
}

const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1).toLowerCase();

export interface SsoDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly secretBox: SecretBox;
  readonly oidc: OidcClient;
  readonly log: Logger;
  /** PUBLIC_URL: the callback the IdP redirects to is on it. */
  readonly publicUrl: string;
  readonly access: Pick<
    AccessService,
    | 'findUserById'
    | 'findUserByEmail'
    | 'findUserByIdentity'
    | 'createUser'
    | 'linkIdentity'
    | 'getMembership'
    | 'addMember'
    | 'requiresSecondFactor'
    | 'createMfaChallenge'
    | 'createSessionForUser'
  >;
}

export type SsoService = ReturnType<typeof createSsoService>;

/**
 * Single sign-on with OpenID Connect, one identity provider per org, configured by the org's
 * admins. Signing in resolves the person to a Keel user, in this order:
 *
 * 1. the user already linked to the provider's `iss` + `sub`;
 * 2. else, with an email the provider says is verified: the user with that email if they are a
 *    member of this org (the identity is linked), or a new user with that email (linked); a user
 *    with that email outside the org is refused (409 SSO_ACCOUNT_CONFLICT), so an org's IdP cannot
 *    take over an account it does not manage;
 * 3. no verified email: refused (403 SSO_EMAIL_UNVERIFIED).
 *
 * A person not yet a member joins with the connection's default role (just-in-time), and only
 * with a verified email at one of the connection's domains (403 SSO_DOMAIN_NOT_ALLOWED): a
 * provider such as Google authenticates anyone with an account, not only the org's people.
 */
export function createSsoService(deps: SsoDeps) {
  const { database, clock, newId, secretBox, oidc, access } = deps;
  const db = database.db;
  const redirectUri = `${deps.publicUrl}${SSO_CALLBACK_PATH}`;
  const sealContext = (orgId: string) => `sso-client-secret:${orgId}`;

  const settingsOf = (row: store.SsoConnectionRow): OidcClientSettings => ({
    issuer: row.issuer,
    clientId: row.client_id,
    clientSecret: secretBox.open(row.client_secret_sealed, sealContext(row.org_id)),
  });

  async function resolveUser(
    orgId: string,
    connection: store.SsoConnectionRow,
    identity: {
      issuer: string;
      subject: string;
      email: string | undefined;
      emailVerified: boolean;
      name: string | undefined;
    },
  ): Promise<Result<{ user: User }>> {
    const provider = `oidc:${identity.issuer}`;
    const linked = await access.findUserByIdentity(provider, identity.subject);
    const member = linked ? await access.getMembership(orgId, linked.id) : undefined;
    if (!member) {
      // Whoever is not in the org yet comes in only with a verified address at one of its domains.
      if (!identity.email || !identity.emailVerified) {
        return failure(
          'SSO_EMAIL_UNVERIFIED',
          'The identity provider did not share a verified email address',
        );
      }
      if (!connection.email_domains.includes(domainOf(identity.email))) {
        return failure(
          'SSO_DOMAIN_NOT_ALLOWED',
          `${domainOf(identity.email)} is not one of the org's SSO domains: ask an admin for an invitation`,
        );
      }
    }
    let user = linked;
    if (!user) {
      const email = identity.email!;
      const existing = await access.findUserByEmail(email);
      if (existing) {
        if (!(await access.getMembership(orgId, existing.id))) {
          return failure(
            'SSO_ACCOUNT_CONFLICT',
            'A Keel account with this email exists and is not a member of this org: sign in to it and accept an invitation first',
          );
        }
        user = existing;
      } else {
        const created = await access.createUser({
          email,
          emailVerified: true,
          ...(identity.name ? { name: identity.name.slice(0, 200) } : {}),
        });
        if (!created.ok) return created;
        user = created.user;
      }
      // A concurrent first sign-in may have linked it already; either way it is this user's.
      await access.linkIdentity(user.id, provider, identity.subject);
    }
    if (!member && !(await access.getMembership(orgId, user.id))) {
      await access.addMember(orgId, user.id, connection.default_role);
    }
    return { ok: true, user };
  }

  return {
    redirectUri,

    async getConnection(orgId: string): Promise<SsoConnection | undefined> {
      const row = await store.findConnection(db, orgId);
      return row && toConnection(row);
    },

    /**
     * Creates or updates the org's connection. The provider's discovery document is fetched
     * first, so a wrong issuer is refused here rather than at the first sign-in. The secret may
     * be left out of an update to keep the stored one.
     */
    async configure(
      actor: Actor,
      orgId: string,
      input: {
        issuer: string;
        clientId: string;
        clientSecret?: string | undefined;
        emailDomains: readonly string[];
        defaultRole?: JitRole | undefined;
      },
    ): Promise<Result<{ connection: SsoConnection }>> {
      const issuer = checkIssuer(input.issuer);
      if (!issuer.ok) return failure('VALIDATION_FAILED', issuer.detail);
      const emailDomains = normalizeDomains(input.emailDomains);
      if (!emailDomains)
        return failure('VALIDATION_FAILED', 'emailDomains must be domain names such as acme.example');
      const existing = await store.findConnection(db, orgId);
      const defaultRole = input.defaultRole ?? existing?.default_role ?? 'viewer';
      if (!holdsAll(actor.permissions, rolePermissions(defaultRole))) {
        return failure('FORBIDDEN', `Granting ${defaultRole} on sign-in needs every permission of that role`);
      }
      const clientSecret =
        input.clientSecret ??
        (existing ? secretBox.open(existing.client_secret_sealed, sealContext(orgId)) : undefined);
      if (clientSecret === undefined)
        return failure('VALIDATION_FAILED', 'clientSecret is required for a new connection');
      try {
        await oidc.discover({ issuer: issuer.issuer, clientId: input.clientId, clientSecret });
      } catch (error) {
        if (!(error instanceof OidcError)) throw error;
        return failure('SSO_DISCOVERY_FAILED', `${issuer.issuer}: ${error.message}`);
      }
      const now = clock.now();
      const row = await store.upsertConnection(db, {
        org_id: orgId,
        id: existing?.id ?? newId('sso'),
        issuer: issuer.issuer,
        client_id: input.clientId,
        client_secret_sealed: secretBox.seal(clientSecret, sealContext(orgId)),
        email_domains: emailDomains,
        default_role: defaultRole,
        created_by: actor.userId ?? null,
        created_at: now,
        updated_at: now,
      });
      return { ok: true, connection: toConnection(row) };
    },

    removeConnection: (orgId: string) => store.deleteConnection(db, orgId),

    /** Starts a sign-in at the org's provider: the URL to send the browser to. */
    async start(orgId: string, returnTo: string | undefined): Promise<Result<{ authorizationUrl: URL }>> {
      const connection = await store.findConnection(db, orgId);
      if (!connection) return failure('SSO_NOT_CONFIGURED', `Org ${orgId} has no SSO connection`);
      const state = randomState();
      const nonce = randomNonce();
      const codeVerifier = randomPKCECodeVerifier();
      let authorizationUrl: URL;
      try {
        authorizationUrl = await oidc.authorizationUrl(settingsOf(connection), {
          redirectUri,
          state,
          nonce,
          codeVerifier,
        });
      } catch (error) {
        if (!(error instanceof OidcError)) throw error;
        return failure('SSO_DISCOVERY_FAILED', error.message);
      }
      const now = clock.now();
      await store.insertAttempt(db, {
        state_hash: hashToken(state),
        org_id: orgId,
        code_verifier: codeVerifier,
        nonce,
        return_to: safeReturnTo(returnTo),
        created_at: now,
        expires_at: new Date(now.getTime() + SSO_LOGIN_TTL_MS),
      });
      return { ok: true, authorizationUrl };
    },

    /** The provider's answer at the callback: a session, or the second-factor step. */
    async finish(callbackUrl: URL, origin: RequestOrigin): Promise<Result<{ outcome: SsoOutcome }>> {
      const state = callbackUrl.searchParams.get('state');
      const attempt = state ? await store.takeAttempt(db, hashToken(state), clock.now()) : undefined;
      if (!state || !attempt) {
        return failure('SSO_STATE_INVALID', 'This sign-in expired or was completed already: start again');
      }
      const connection = await store.findConnection(db, attempt.org_id);
      if (!connection) return failure('SSO_NOT_CONFIGURED', 'The org’s SSO connection was removed');
      let identity: Awaited<ReturnType<OidcClient['finish']>>;
      try {
        identity = await oidc.finish(settingsOf(connection), callbackUrl, {
          state,
          nonce: attempt.nonce,
          codeVerifier: attempt.code_verifier,
        });
      } catch (error) {
        if (!(error instanceof OidcError)) throw error;
        deps.log.info({ orgId: attempt.org_id, reason: error.message }, 'SSO sign-in refused');
        return failure('SSO_LOGIN_FAILED', error.message);
      }
      const resolved = await resolveUser(attempt.org_id, connection, identity);
      if (!resolved.ok) return resolved;
      const { user } = resolved;
      const returnTo = attempt.return_to;
      if (access.requiresSecondFactor(user)) {
        const challenge = await access.createMfaChallenge(user.id, { method: SSO_SESSION_METHOD, ...origin });
        return { ok: true, outcome: { status: 'mfa_required', ...challenge, returnTo } };
      }
      const { session, token } = await access.createSessionForUser(user.id, {
        method: SSO_SESSION_METHOD,
        ...origin,
      });
      return { ok: true, outcome: { status: 'ok', user, session, token, returnTo } };
    },

    pruneAttempts: () => store.pruneAttempts(db, clock.now()),
  };
}
