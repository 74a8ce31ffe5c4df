import { defineErrors, type ErrorCodesOf } from '../../infra/http/errors.ts';

/** Sign-up, sign-in, orgs, members and invitations (docs/access.md). */
export const ACCESS_ERRORS = defineErrors('access', {
  INVALID_CREDENTIALS: { status: 401, title: 'The email or the password is wrong' },
  IP_NOT_ALLOWED: { status: 403, title: 'Not allowed from this address' },
  EMAIL_TAKEN: { status: 409, title: 'An account with this email exists' },
  INVITATION_EXPIRED: { status: 410, title: 'The invitation expired or was already used' },
  LOGIN_THROTTLED: { status: 429, title: 'Too many failed sign-in attempts' },
});

declare module '../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof ACCESS_ERRORS> {}
}
