import type { ErrorCode, FieldError } from './http/errors.ts';

/**
 * The one shape of an expected outcome (STYLE.md, "three kinds of failure"): a service returns
 * `ok(value)` or `fail(code, …)`, never throws for an outcome a caller must handle, and names the
 * codes it can fail with in its return type. Only routes turn a failure into a problem document
 * (`unwrap` in infra/http/result.ts). A programmer error still throws.
 */
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
}

export interface Failure<Code extends ErrorCode = ErrorCode> {
  readonly ok: false;
  readonly code: Code;
  /** For people: what went wrong with this request, in a sentence. */
  readonly detail: string;
  /** Extension members of the problem document (RFC 9457 §3.2), e.g. `{ available: '12' }`. */
  readonly members?: Readonly<Record<string, unknown>>;
  /** Every bad input field at once, for VALIDATION_FAILED. */
  readonly errors?: readonly FieldError[];
  /** When the caller may try again (sent as Retry-After). */
  readonly retryAfterMs?: number;
}

export type Result<T, Code extends ErrorCode = ErrorCode> = Ok<T> | Failure<Code>;

export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

export function fail<Code extends ErrorCode>(
  code: Code,
  detail: string,
  extra: Omit<Failure<Code>, 'ok' | 'code' | 'detail'> = {},
): Failure<Code> {
  return { ok: false, code, detail, ...extra };
}
