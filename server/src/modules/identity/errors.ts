import { defineErrors, type ErrorCodesOf } from '../../infra/http/errors.ts';

/** Identity: subjects, providers, verifications (docs/identity.md). */
export const IDENTITY_ERRORS = defineErrors('identity', {
  SUBJECT_NOT_FOUND: { status: 404, title: 'No such subject' },
  VERIFICATION_NOT_FOUND: { status: 404, title: 'No such verification' },
  IDENTITY_PROVIDER_NOT_CONFIGURED: { status: 404, title: 'The provider is not configured for this org' },
  NO_IDENTITY_PROVIDERS: { status: 422, title: 'No enabled provider can check this request' },
  ANALYTICS_RANGE_TOO_LARGE: { status: 422, title: 'The analytics range is too long' },
});

declare module '../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof IDENTITY_ERRORS> {}
}
