import { defineErrors, type ErrorCodesOf } from '../../../infra/http/errors.ts';

/** The second factor at sign-in, enrolment and the org's 2FA policy (docs/access.md#two-factor-authentication-totp). */
export const TWO_FACTOR_ERRORS = defineErrors('access-two-factor', {
  MFA_TOKEN_INVALID: { status: 401, title: 'The sign-in challenge expired or was already used' },
  TWO_FACTOR_CODE_INVALID: { status: 401, title: 'The two-factor code is wrong or was already used' },
  TWO_FACTOR_THROTTLED: { status: 429, title: 'Too many wrong two-factor codes' },
  TWO_FACTOR_ALREADY_ENABLED: { status: 409, title: 'Two-factor authentication is already enabled' },
  TWO_FACTOR_NOT_ENABLED: { status: 409, title: 'Two-factor authentication is not enabled' },
  TWO_FACTOR_ENROLMENT_MISSING: { status: 409, title: 'No two-factor enrolment is in progress' },
  TWO_FACTOR_REQUIRED: {
    status: 403,
    title: 'This org requires two-factor authentication of owners and admins',
  },
});

declare module '../../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof TWO_FACTOR_ERRORS> {}
}
