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
 * The codes of the HTTP layer itself and of features not yet moved into their own `errors.ts`.
 */
export const ERROR_CATALOGUE = defineErrors('keel', {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_BODY: { status: 400, title: 'The request body could not be parsed' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication is required' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  INVALID_CREDENTIALS: { status: 401, title: 'The email or the password is wrong' },
  IP_NOT_ALLOWED: { status: 403, title: 'Not allowed from this address' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  CONFLICT: { status: 409, title: 'Conflict with the current state' },
  EMAIL_TAKEN: { status: 409, title: 'An account with this email exists' },
  INVITATION_EXPIRED: { status: 410, title: 'The invitation expired or was already used' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'Idempotency-Key was used with a different request' },
  IDEMPOTENCY_REQUEST_IN_PROGRESS: {
    status: 409,
    title: 'A request with this Idempotency-Key is in progress',
  },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  LOGIN_THROTTLED: { status: 429, title: 'Too many failed sign-in attempts' },
  INTERNAL: { status: 500, title: 'Internal error' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  // Ledger (docs/ledger.md): a failed transfer's problem document carries `transferId`, and
  // INSUFFICIENT_FUNDS carries `accountId`, `available` and `requested`.
  ASSET_NOT_FOUND: { status: 404, title: 'No such asset' },
  ASSET_EXISTS: { status: 409, title: 'The asset exists with a different scale' },
  ACCOUNT_NOT_FOUND: { status: 404, title: 'No such account' },
  ACCOUNT_ID_CONFLICT: { status: 409, title: 'An account with this id exists with different fields' },
  TRANSFER_NOT_FOUND: { status: 404, title: 'No such transfer' },
  TRANSFER_ID_CONFLICT: { status: 409, title: 'A transfer with this id exists with different fields' },
  REFERENCE_CONFLICT: { status: 409, title: 'The reference is used by another transfer' },
  ASSET_MISMATCH: { status: 422, title: 'The accounts and the transfer are not in the same asset' },
  INSUFFICIENT_FUNDS: { status: 422, title: 'The account has insufficient funds' },
  TRANSFER_NOT_PENDING: { status: 422, title: 'The transfer is not a pending transfer' },
  PENDING_EXPIRED: { status: 409, title: 'The pending transfer expired' },
  ALREADY_POSTED: { status: 409, title: 'The pending transfer was already posted' },
  ALREADY_VOIDED: { status: 409, title: 'The pending transfer was already voided' },
  POST_AMOUNT_EXCEEDS_PENDING: { status: 422, title: 'The amount to post exceeds the pending amount' },
  TRANSFER_NOT_REVERSIBLE: { status: 422, title: 'Only posted transfers can be reversed' },
  ALREADY_REVERSED: { status: 409, title: 'The transfer was already reversed in full' },
  REVERSAL_EXCEEDS_AMOUNT: { status: 422, title: 'The reversal exceeds what is left to reverse' },
  // Access: second factor, email flows, wallet sign-in, SSO (docs/access.md).
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
  EMAIL_TOKEN_INVALID: { status: 400, title: 'The link is invalid, expired or was already used' },
  SIWE_MESSAGE_INVALID: { status: 400, title: 'The sign-in message is not valid' },
  SIWE_NONCE_INVALID: { status: 401, title: 'The nonce is unknown, expired or was already used' },
  WALLET_SIGNATURE_INVALID: { status: 401, title: 'The wallet signature is not valid' },
  WALLET_CHAIN_UNSUPPORTED: { status: 422, title: 'Smart-contract wallets on this chain cannot be checked' },
  CHAIN_UNAVAILABLE: { status: 503, title: 'The chain could not be reached' },
  WALLET_ALREADY_LINKED: { status: 409, title: 'The wallet is linked to another account' },
  LAST_SIGN_IN_METHOD: { status: 409, title: 'This is the account’s last way to sign in' },
  SSO_NOT_CONFIGURED: { status: 404, title: 'The org has no SSO connection' },
  SSO_DISCOVERY_FAILED: { status: 422, title: 'The identity provider’s configuration could not be read' },
  SSO_STATE_INVALID: { status: 400, title: 'The SSO sign-in expired or was already completed' },
  SSO_LOGIN_FAILED: { status: 401, title: 'The identity provider’s answer was not valid' },
  SSO_EMAIL_UNVERIFIED: { status: 403, title: 'The identity provider gave no verified email address' },
  SSO_DOMAIN_NOT_ALLOWED: { status: 403, title: 'This email domain may not join the org through SSO' },
  SSO_ACCOUNT_CONFLICT: { status: 409, title: 'An account with this email exists outside the org' },
  // Audit log (docs/audit.md).
  AUDIT_CHECKPOINT_NOT_FOUND: { status: 404, title: 'No such audit checkpoint' },
  // Usage metering (docs/usage.md).
  METER_NOT_FOUND: { status: 404, title: 'No such meter' },
  METER_EXISTS: { status: 409, title: 'A meter with this name exists with another aggregation' },
  TOO_MANY_METERS: { status: 422, title: 'The org has as many meters as it may define' },
  USAGE_QUERY_TOO_LARGE: { status: 422, title: 'The usage query matches too many rows' },
  // Identity: subjects, providers, verifications (docs/identity.md).
  SUBJECT_NOT_FOUND: { status: 404, title: 'No such subject' },
  VERIFICATION_NOT_FOUND: { status: 404, title: 'No such verification' },
  IDENTITY_PROVIDER_NOT_CONFIGURED: { status: 404, title: 'The provider is not configured for this org' },
  NO_IDENTITY_PROVIDERS: { status: 422, title: 'No enabled provider can check this request' },
  ANALYTICS_RANGE_TOO_LARGE: { status: 422, title: 'The analytics range is too long' },
  // Identity: wallets and on-chain attestations (docs/identity.md). WALLET_LINKED_TO_OTHER_SUBJECT
  // carries `subjectId` and `accountId`, the link that holds the wallet.
  WALLET_CHALLENGE_INVALID: {
    status: 422,
    title: 'The wallet challenge is unknown, expired or was already used',
  },
  WALLET_PROOF_INVALID: { status: 422, title: 'The signature does not prove control of the wallet' },
  WALLET_LINKED_TO_OTHER_SUBJECT: {
    status: 409,
    title: 'The wallet is linked to another subject in this org',
  },
  WALLET_NOT_FOUND: { status: 404, title: 'No such wallet is linked to the subject' },
  TOO_MANY_WALLETS: { status: 422, title: 'The subject has as many wallets as it may link' },
  VERDICT_NOT_ATTESTABLE: { status: 422, title: 'Only a current verified verdict can be attested' },
  ATTESTATION_CHAIN_UNAVAILABLE: {
    status: 422,
    title: 'The chain has no RPC URL or no deployed attestation registry',
  },
  ATTESTATION_NOT_FOUND: { status: 404, title: 'The verification has no attestation' },
});

declare module './errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof ERROR_CATALOGUE> {}
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
