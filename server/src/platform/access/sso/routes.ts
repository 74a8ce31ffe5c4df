import { Type } from 'typebox';
import { requireOrgId } from '../../../infra/http/auth.ts';
import { KeelError } from '../../../infra/http/errors.ts';
import type { App } from '../../../infra/http/pipeline.ts';
import { isId } from '../../../infra/ids.ts';
import { type CookieSettings, sessionCookie } from '../hooks.ts';
import { actorOf, unwrap } from '../present.ts';
import { PutSsoConnectionBody, SsoCallbackQuery, SsoConnectionSchema, SsoStartQuery } from './schemas.ts';
import type { SsoConnection, SsoService } from './service.ts';

const NoContent = Type.Null({ description: 'No content.' });
const Redirect = Type.Null({ description: 'A redirect: follow the Location header.' });

export function ssoRoutes(deps: { service: SsoService; cookies: CookieSettings; publicUrl: string }) {
  const { service, cookies, publicUrl } = deps;
  const present = (connection: SsoConnection) => ({
    id: connection.id,
    issuer: connection.issuer,
    clientId: connection.clientId,
    clientSecretSet: true as const,
    emailDomains: [...connection.emailDomains],
    defaultRole: connection.defaultRole,
    redirectUri: service.redirectUri,
    signInUrl: `${publicUrl}/v1/auth/sso/start?orgId=${connection.orgId}`,
    createdAt: connection.createdAt.toISOString(),
    updatedAt: connection.updatedAt.toISOString(),
  });

  return async (app: App) => {
    app.get(
      '/v1/org/sso',
      {
        config: { permission: 'security:read' },
        schema: {
          operationId: 'getSsoConnection',
          summary: 'The org’s single sign-on (OpenID Connect) connection',
          tags: ['orgs'],
          response: { 200: SsoConnectionSchema },
        },
      },
      async (request) => {
        const connection = await service.getConnection(requireOrgId(request));
        if (!connection) throw new KeelError('SSO_NOT_CONFIGURED', 'This org has no SSO connection');
        return present(connection);
      },
    );

    app.put(
      '/v1/org/sso',
      {
        config: { permission: 'security:write' },
        schema: {
          operationId: 'putSsoConnection',
          summary: 'Connect the org to an OpenID Connect identity provider',
          description:
            'Creates or replaces the org’s connection. The provider’s discovery document is read first: an ' +
            'unreachable or invalid issuer answers 422 `SSO_DISCOVERY_FAILED`. Register the returned ' +
            '`redirectUri` at the provider. The client secret is sealed under the master key and never returned.',
          tags: ['orgs'],
          body: PutSsoConnectionBody,
          response: { 200: SsoConnectionSchema },
        },
      },
      async (request) => {
        const result = unwrap(await service.configure(actorOf(request), requireOrgId(request), request.body));
        return present(result.connection);
      },
    );

    app.delete(
      '/v1/org/sso',
      {
        config: { permission: 'security:write' },
        schema: {
          operationId: 'deleteSsoConnection',
          summary: 'Disconnect the org’s identity provider',
          description:
            'People keep their accounts and sessions; they sign in with a password or wallet from now on.',
          tags: ['orgs'],
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        if (!(await service.removeConnection(requireOrgId(request)))) {
          throw new KeelError('SSO_NOT_CONFIGURED', 'This org has no SSO connection');
        }
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/v1/auth/sso/start',
      {
        schema: {
          operationId: 'startSsoLogin',
          summary: 'Sign in with the org’s identity provider (redirects)',
          description:
            'Redirects the browser (302) to the org’s OpenID Connect provider with an authorization code request ' +
            '(PKCE S256, state and nonce). The provider sends the browser back to `/v1/auth/sso/callback`. Public: ' +
            'limited per address.',
          tags: ['auth'],
          querystring: SsoStartQuery,
          response: { 302: Redirect },
        },
      },
      async (request, reply) => {
        if (!isId(request.query.orgId, 'org')) {
          throw new KeelError('SSO_NOT_CONFIGURED', `Org ${request.query.orgId} has no SSO connection`);
        }
        const { authorizationUrl } = unwrap(await service.start(request.query.orgId, request.query.returnTo));
        return reply.redirect(authorizationUrl.toString(), 302);
      },
    );

    app.get(
      '/v1/auth/sso/callback',
      {
        schema: {
          operationId: 'finishSsoLogin',
          summary: 'Where the identity provider sends the browser back (redirects)',
          description:
            'Validates the answer (state, issuer), redeems the code with the PKCE verifier, validates the ID token ' +
            '(signature, issuer, audience, expiry, nonce), then signs the person in: a session cookie and a 302 to ' +
            'the `returnTo` path. A user with 2FA on is sent to `/login/two-factor#mfaToken=…` instead, to finish ' +
            'with POST /v1/auth/login/two-factor. Failures answer a problem document.',
          tags: ['auth'],
          querystring: SsoCallbackQuery,
          response: { 302: Redirect },
        },
      },
      async (request, reply) => {
        // The URL the provider redirected to: the registered redirect URI with its query.
        const callbackUrl = new URL(request.url, publicUrl);
        const { outcome } = unwrap(
          await service.finish(callbackUrl, { ip: request.ip, userAgent: request.headers['user-agent'] }),
        );
        if (outcome.status === 'mfa_required') {
          // The fragment never reaches a server log; the page posts it with the code.
          const fragment = new URLSearchParams({
            mfaToken: outcome.mfaToken,
            expiresAt: outcome.expiresAt.toISOString(),
            returnTo: outcome.returnTo,
          });
          return reply.redirect(`${publicUrl}/login/two-factor#${fragment}`, 302);
        }
        reply.header('set-cookie', sessionCookie(outcome.token, outcome.session.expiresAt, cookies));
        return reply.redirect(`${publicUrl}${outcome.returnTo}`, 302);
      },
    );
  };
}
