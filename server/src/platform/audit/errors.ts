import { defineErrors, type ErrorCodesOf } from '../../infra/http/errors.ts';

/** The audit log (docs/audit.md). */
export const AUDIT_ERRORS = defineErrors('audit', {
  AUDIT_CHECKPOINT_NOT_FOUND: { status: 404, title: 'No such audit checkpoint' },
});

declare module '../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof AUDIT_ERRORS> {}
}
