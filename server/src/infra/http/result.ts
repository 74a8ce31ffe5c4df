import type { Failure, Result } from '../result.ts';
import { KeelError } from './errors.ts';

/** The problem a service's expected failure answers with: its code, detail and members. */
export function failureError(failure: Failure): KeelError {
  const headers =
    failure.retryAfterMs === undefined
      ? undefined
      : { 'retry-after': String(Math.max(1, Math.ceil(failure.retryAfterMs / 1000))) };
  return new KeelError(failure.code, failure.detail, {
    ...(failure.errors && { errors: failure.errors }),
    ...(failure.members && { members: failure.members }),
    ...(headers && { headers }),
  });
}

/** A route's one step from a service's outcome to its answer: the value, or the failure's problem. */
export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw failureError(result);
}
