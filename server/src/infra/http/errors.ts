import { type Static, Type } from 'typebox';

/** What a code means on the wire: one HTTP status and one title. */
export interface ErrorEntry {
  readonly status: number;
  readonly title: string;
}

/**
 * The codes Keel answers with, as a type. Each module that declares codes with `defineErrors`
 * adds them here by declaration merging, in its own `errors.ts`:
 *
 * ```ts
 * export const LEDGER_ERRORS = defineErrors('ledger', { ASSET_NOT_FOUND: { status: 404, title: '…' } });
 * declare module '../../infra/http/errors.ts' {
 *   interface KeelErrorCodes extends ErrorCodesOf<typeof LEDGER_ERRORS> {}
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in each module
export interface KeelErrorCodes {}

/** The type a module's `defineErrors` result contributes to `KeelErrorCodes`. */
export type ErrorCodesOf<Definitions extends Record<string, ErrorEntry>> = {
  readonly [Code in keyof Definitions]: ErrorEntry;
};

interface Registered extends ErrorEntry {
  readonly owner: string;
}

/** The one catalogue at run time: every code of every module, registered when its module loads. */
const catalogue = new Map<string, Registered>();

/**
 * Declares a module's error codes. A code means one thing everywhere: declaring a code another
 * module owns, or the same code twice with another meaning, is a programmer error.
 */
export function defineErrors<const Definitions extends Record<string, ErrorEntry>>(
  owner: string,
  definitions: Definitions,
): Definitions {
  for (const [code, entry] of Object.entries(definitions)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(code)) throw new Error(`error code must be UPPER_SNAKE_CASE: ${code}`);
    const existing = catalogue.get(code);
    if (existing && (existing.owner !== owner || existing.status !== entry.status)) {
      throw new Error(`error code ${code} is declared by ${existing.owner} and again by ${owner}`);
    }
    catalogue.set(code, { owner, status: entry.status, title: entry.title });
  }
  return definitions;
}

/** The entry of a registered code; an unknown code is a programmer error. */
export function errorEntry(code: string): Registered {
  const entry = catalogue.get(code);
  if (!entry) throw new Error(`error code ${code} is not declared by any module (defineErrors)`);
  return entry;
}

/** Every registered code, sorted, for the API reference and the SDK. */
export function allErrors(): Array<Registered & { readonly code: string }> {
  return [...catalogue.entries()]
    .map(([code, entry]) => ({ code, ...entry }))
    .sort((a, b) => a.code.localeCompare(b.code));
}

/**
 * The codes of the HTTP layer itself, which any route may answer with. A module's own outcomes
 * are declared in its own `errors.ts`; reuse these where they fit.
 */
export const HTTP_ERRORS = defineErrors('keel', {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_BODY: { status: 400, title: 'The request body could not be parsed' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication is required' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  CONFLICT: { status: 409, title: 'Conflict with the current state' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'Idempotency-Key was used with a different request' },
  IDEMPOTENCY_REQUEST_IN_PROGRESS: {
    status: 409,
    title: 'A request with this Idempotency-Key is in progress',
  },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal error' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
});

declare module './errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof HTTP_ERRORS> {}
}

export type ErrorCode = keyof KeelErrorCodes & string;

/** A problem document's `type`: a stable URN per code (RFC 9457 allows any URI). */
export function problemType(code: ErrorCode): string {
  return `urn:keel:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

export interface FieldError {
  /** JSON Pointer into the request part named by `in`, e.g. `/amount`. */
  readonly path: string;
  readonly in: 'body' | 'query' | 'params' | 'headers';
  readonly message: string;
}

/**
 * What the HTTP edge throws to answer with a problem document: routes (through `unwrap`) and
 * request hooks. Services never throw it: their expected outcomes are `Result` values.
 */
export class KeelError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly extra: {
      readonly errors?: readonly FieldError[];
      readonly headers?: Readonly<Record<string, string>>;
      /** Extension members added to the problem document (RFC 9457 §3.2). */
      readonly members?: Readonly<Record<string, unknown>>;
    } = {},
  ) {
    super(detail ?? errorEntry(code).title);
    this.name = 'KeelError';
    this.status = errorEntry(code).status;
  }
}

export const FieldErrorSchema = Type.Object({
  path: Type.String({ description: 'JSON Pointer to the bad field.', examples: ['/amount'] }),
  in: Type.Union([
    Type.Literal('body'),
    Type.Literal('query'),
    Type.Literal('params'),
    Type.Literal('headers'),
  ]),
  message: Type.String({ examples: ['must be string'] }),
});

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ examples: ['urn:keel:problem:validation-failed'] }),
    title: Type.String({ examples: ['The request is not valid'] }),
    status: Type.Integer({ examples: [400] }),
    detail: Type.String({ examples: ['body/amount must be string'] }),
    code: Type.String({
      description: 'Stable machine-readable code from the error catalogue.',
      examples: ['VALIDATION_FAILED'],
    }),
    requestId: Type.String({ examples: ['req_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    errors: Type.Optional(Type.Array(FieldErrorSchema)),
  },
  {
    $id: 'Problem',
    title: 'Problem',
    description: 'An RFC 9457 problem document (application/problem+json).',
    additionalProperties: true,
  },
);

export type Problem = Static<typeof ProblemSchema>;

export function problem(
  code: ErrorCode,
  requestId: string,
  detail?: string,
  extra: { errors?: readonly FieldError[]; members?: Readonly<Record<string, unknown>> } = {},
): Problem {
  const entry = errorEntry(code);
  return {
    ...extra.members,
    type: problemType(code),
    title: entry.title,
    status: entry.status,
    detail: detail ?? entry.title,
    code,
    requestId,
    ...(extra.errors && extra.errors.length > 0 ? { errors: [...extra.errors] } : {}),
  };
}
