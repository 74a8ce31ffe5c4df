import { defineErrors, type ErrorCodesOf } from '../../../infra/http/errors.ts';

/** Single sign-on through an org's OpenID Connect provider (docs/access.md#single-sign-on-openid-connect). */
export const SSO_ERRORS = defineErrors('access-sso', {
  SSO_NOT_CONFIGURED: { status: 404, title: 'The org has no SSO connection' },
  SSO_DISCOVERY_FAILED: { status: 422, title: 'The identity provider’s configuration could not be read' },
  SSO_STATE_INVALID: { status: 400, title: 'The SSO sign-in expired or was already completed' },
  SSO_LOGIN_FAILED: { status: 401, title: 'The identity provider’s answer was not valid' },
  SSO_EMAIL_UNVERIFIED: { status: 403, title: 'The identity provider gave no verified email address' },
  SSO_DOMAIN_NOT_ALLOWED: { status: 403, title: 'This email domain may not join the org through SSO' },
  SSO_ACCOUNT_CONFLICT: { status: 409, title: 'An account with this email exists outside the org' },
});

declare module '../../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof SSO_ERRORS> {}
}
