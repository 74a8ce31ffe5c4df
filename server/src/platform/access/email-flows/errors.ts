import { defineErrors, type ErrorCodesOf } from '../../../infra/http/errors.ts';

/** Email verification and password reset links (docs/access.md#email-verification-and-password-reset). */
export const EMAIL_FLOW_ERRORS = defineErrors('access-email-flows', {
  EMAIL_TOKEN_INVALID: { status: 400, title: 'The link is invalid, expired or was already used' },
});

declare module '../../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof EMAIL_FLOW_ERRORS> {}
}
