import { type Static, Type } from 'typebox';

/**
 * The one catalogue of error codes Keel answers with. Each code maps to one HTTP status and
 * title; a problem document's `type` is derived from the code. Modules add their own codes
 * here so that clients see a single, documented list.
 */
export const ERROR_CATALOGUE = {
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
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

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
 * An error a handler or service throws to answer with a problem document. Expected outcomes
 * inside services are values; this is how the HTTP edge turns them into responses.
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
    super(detail ?? ERROR_CATALOGUE[code].title);
    this.name = 'KeelError';
    this.status = ERROR_CATALOGUE[code].status;
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
  const entry = ERROR_CATALOGUE[code];
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
