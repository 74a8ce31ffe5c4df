import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { requireOrgId } from '../../../infra/http/auth.ts';
import { KeelError } from '../../../infra/http/errors.ts';
import type { App } from '../../../infra/http/pipeline.ts';
import { addRouteHooks } from '../../../infra/http/route-hooks.ts';
import type { CookieSettings } from '../hooks.ts';
import { actorOf, sessionOf, unwrap } from '../present.ts';
import { SignedInSchema } from '../schemas.ts';
import type { AccessService } from '../service.ts';
import {
  CodeBody,
  CompleteSignInBody,
  ConfirmTotpBody,
  RecoveryCodesSchema,
  TotpEnrolmentSchema,
  TwoFactorEnabledSchema,
  TwoFactorPolicySchema,
  TwoFactorStatusSchema,
  UpdateTwoFactorPolicyBody,
} from './schemas.ts';
import type { TwoFactorPolicy, TwoFactorService } from './service.ts';
import { signedIn } from './signed-in.ts';

const NoContent = Type.Null({ description: 'No content.' });

const presentPolicy = (policy: TwoFactorPolicy) => ({
  requireForAdmins: policy.requireForAdmins,
  updatedAt: policy.updatedAt?.toISOString() ?? null,
});

/** A wrong code answers with a fresh MFA token in the problem document, to retry with. */
function unwrapSignIn(result: Awaited<ReturnType<TwoFactorService['completeSignIn']>>) {
  if (!result.ok && result.mfaToken && result.expiresAt) {
    throw new KeelError(result.code, result.detail, {
      members: { mfaToken: result.mfaToken, mfaTokenExpiresAt: result.expiresAt.toISOString() },
    });
  }
  return unwrap(result);
}

export function twoFactorRoutes(deps: {
  service: TwoFactorService;
  access: AccessService;
  cookies: CookieSettings;
}) {
  const { service, access, cookies } = deps;
  return async (app: App) => {
    app.post(
      '/v1/auth/login/two-factor',
      {
        schema: {
          operationId: 'completeLoginWithSecondFactor',
          summary: 'Complete a sign-in with a TOTP code or a recovery code',
          description:
            'The second step after a sign-in answered `mfa_required` (password, wallet or SSO). The `mfaToken` ' +
            'works once: after a wrong code the 401 `TWO_FACTOR_CODE_INVALID` problem carries a fresh `mfaToken` ' +
            `to retry with. After 10 wrong codes in 15 minutes the account's checks pause (429 ` +
            '`TWO_FACTOR_THROTTLED`). Public: limited per address.',
          tags: ['auth'],
          body: CompleteSignInBody,
          response: { 200: SignedInSchema },
        },
      },
      async (request, reply) => {
        const result = unwrapSignIn(
          await service.completeSignIn(request.body.mfaToken, request.body.code, {
            ip: request.ip,
            userAgent: request.headers['user-agent'],
          }),
        );
        return signedIn(reply, { access, cookies }, result);
      },
    );

    app.get(
      '/v1/me/two-factor',
      {
        config: { permission: 'account:read' },
        schema: {
          operationId: 'getTwoFactorStatus',
          summary: 'Whether two-factor authentication is on for your account',
          tags: ['account'],
          response: { 200: TwoFactorStatusSchema },
        },
      },
      async (request) => {
        const status = await service.status(sessionOf(request).userId);
        return { ...status, enabledAt: status.enabledAt?.toISOString() ?? null };
      },
    );

    app.post(
      '/v1/me/two-factor/totp',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'beginTotpEnrolment',
          summary: 'Start enrolling an authenticator app (TOTP)',
          description:
            'Returns a new secret and its `otpauth://` URI, once. Two-factor authentication is on only after ' +
            '`confirmTotpEnrolment` with a code from the app. Starting again replaces an unconfirmed secret.',
          tags: ['account'],
          response: { 201: TotpEnrolmentSchema },
        },
      },
      async (request, reply) => {
        const enrolment = unwrap(await service.beginEnrolment(sessionOf(request).userId));
        return reply.code(201).send({ secret: enrolment.secret, otpauthUri: enrolment.otpauthUri });
      },
    );

    app.post(
      '/v1/me/two-factor/totp/confirm',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'confirmTotpEnrolment',
          summary: 'Turn two-factor authentication on with a first code from the app',
          description: 'Answers the recovery codes, once.',
          tags: ['account'],
          body: ConfirmTotpBody,
          response: { 200: TwoFactorEnabledSchema },
        },
      },
      async (request) => {
        const enabled = unwrap(await service.confirmEnrolment(sessionOf(request).userId, request.body.code));
        return { enabledAt: enabled.enabledAt.toISOString(), recoveryCodes: enabled.recoveryCodes };
      },
    );

    app.post(
      '/v1/me/two-factor/disable',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'disableTwoFactor',
          summary: 'Turn two-factor authentication off',
          description:
            'Needs a current TOTP code or a recovery code, so a stolen session alone cannot do it.',
          tags: ['account'],
          body: CodeBody,
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        unwrap(await service.disable(sessionOf(request).userId, request.body.code));
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/v1/me/two-factor/recovery-codes',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'regenerateRecoveryCodes',
          summary: 'Replace your recovery codes',
          description: 'Needs a current TOTP code or a recovery code. The old codes stop working.',
          tags: ['account'],
          body: CodeBody,
          response: { 200: RecoveryCodesSchema },
        },
      },
      async (request) => {
        const result = unwrap(
          await service.regenerateRecoveryCodes(sessionOf(request).userId, request.body.code),
        );
        return { recoveryCodes: result.recoveryCodes };
      },
    );

    app.get(
      '/v1/org/two-factor',
      {
        config: { permission: 'security:read' },
        schema: {
          operationId: 'getTwoFactorPolicy',
          summary: 'The org’s two-factor policy',
          tags: ['orgs'],
          response: { 200: TwoFactorPolicySchema },
        },
      },
      async (request) => presentPolicy(await service.getPolicy(requireOrgId(request))),
    );

    app.put(
      '/v1/org/two-factor',
      {
        config: { permission: 'security:write' },
        schema: {
          operationId: 'updateTwoFactorPolicy',
          summary: 'Require two-factor authentication of the org’s owners and admins',
          description:
            'When on, owners and admins without two-factor authentication get 403 `TWO_FACTOR_REQUIRED` on the ' +
            'org’s routes until they enrol (their own account routes keep working, so they can). Turning it on ' +
            'needs two-factor authentication on your own account first.',
          tags: ['orgs'],
          body: UpdateTwoFactorPolicyBody,
          response: { 200: TwoFactorPolicySchema },
        },
      },
      async (request) => {
        const result = unwrap(
          await service.setPolicy(requireOrgId(request), request.body.requireForAdmins, actorOf(request)),
        );
        return presentPolicy(result.policy);
      },
    );
  };
}

/**
 * Enforces the org policy on every org-scoped route (one whose permission is not session-only):
 * a session of an owner or admin without 2FA in an org that requires it is refused. Runs after
 * authentication (an onRequest hook registered after the access hooks).
 */
export function twoFactorPolicyHook(deps: {
  service: TwoFactorService;
  isSessionOnly: (permission: string) => boolean;
}) {
  return async (app: App) => {
    // Only routes whose permission is org-scoped can be refused; the permission is bound once.
    addRouteHooks(app, (route) => {
      const permission = route.config?.permission;
      if (!permission || deps.isSessionOnly(permission)) return undefined;
      return {
        onRequest: async (request: FastifyRequest) => {
          const principal = request.principal;
          if (principal?.kind !== 'session' || !principal.userId || !principal.orgId) return;
          if (await deps.service.mustEnrol(principal.orgId, principal.userId)) {
            throw new KeelError(
              'TWO_FACTOR_REQUIRED',
              'This org requires two-factor authentication of owners and admins: enable it at POST /v1/me/two-factor/totp',
            );
          }
        },
      };
    });
  };
}
