import { type TSchema, Type } from 'typebox';
import type { Permission } from '../../infra/http/auth.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../infra/http/pagination.ts';
import { MAX_ROLL_GRACE_SECONDS } from './api-keys.ts';
import { MAX_ALLOWLIST_ENTRIES } from './domain/cidr.ts';
import { ROLES, type Role } from './domain/permissions.ts';
import { API_KEY_ENVIRONMENTS, type ApiKeyEnvironment } from './domain/tokens.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './passwords.ts';
import { MAX_NAME_LENGTH } from './service.ts';

/** Metadata a key may carry: small string pairs for the caller's own bookkeeping. */
export const MAX_METADATA_ENTRIES = 20;
export const MAX_METADATA_VALUE_LENGTH = 500;

const Nullable = <T extends TSchema>(schema: T, description?: string) =>
  Type.Union([schema, Type.Null()], description ? { description } : {});
const DateTime = (description?: string) =>
  Type.String({
    format: 'date-time',
    examples: ['2026-11-21T12:00:00.000Z'],
    ...(description ? { description } : {}),
  });

export const Email = Type.String({ format: 'email', maxLength: 254, examples: ['ada@example.com'] });
export const Password = Type.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description: `At least ${PASSWORD_MIN_LENGTH} characters.`,
  examples: ['correct horse battery staple'],
});
const Name = Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH, examples: ['Ada Lovelace'] });
const OrgName = Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH, examples: ['Acme dApp'] });
export const RoleSchema = Type.Unsafe<Role>({
  type: 'string',
  enum: [...ROLES],
  description:
    'owner, admin, developer, billing or viewer. What each may do is listed in the access guide (docs/access.md).',
  examples: ['developer'],
});
export const ScopeSchema = Type.Unsafe<Permission>({
  type: 'string',
  description: 'A permission the key holds.',
  examples: ['ledger:read'],
});
const Allowlist = Type.Array(Type.String({ maxLength: 64, examples: ['203.0.113.0/24'] }), {
  maxItems: MAX_ALLOWLIST_ENTRIES,
  description: 'IP addresses or CIDR ranges (IPv4 and IPv6). Empty: any address.',
  examples: [['203.0.113.0/24', '2001:db8::/32']],
});
/**
 * A per-minute quota, or null for the deployment default. One JSON type list rather than a
 * union: with type coercion on, Ajv would turn 0 into null through a union's null branch.
 */
const NullablePerMinute = Type.Unsafe<number | null>({
  type: ['integer', 'null'],
  minimum: 1,
  maximum: 1_000_000_000,
  examples: [600],
});

export const PageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
  cursor: Type.Optional(
    Type.String({ maxLength: 200, description: 'The `nextCursor` of the previous page.' }),
  ),
});

export const pageOf = <T extends TSchema>(item: T, id: string) =>
  Type.Object(
    {
      data: Type.Array(item),
      nextCursor: Nullable(
        Type.String({ description: 'Pass as `cursor` for the next page; null on the last.' }),
      ),
    },
    { $id: id, title: id },
  );

export const UserSchema = Type.Object(
  {
    id: Type.String({ examples: ['usr_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    email: Nullable(Email, 'Null for a user who signed up with a wallet.'),
    emailVerifiedAt: Nullable(DateTime()),
    name: Nullable(Name),
    twoFactorEnabled: Type.Boolean({ description: 'Sign-in asks for a TOTP code after the password.' }),
    createdAt: DateTime(),
  },
  { $id: 'User', title: 'User' },
);

export const SessionSchema = Type.Object(
  {
    id: Type.String({ examples: ['ses_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    method: Type.String({ description: 'How the user signed in.', examples: ['password'] }),
    ip: Nullable(Type.String({ examples: ['203.0.113.7'] })),
    userAgent: Nullable(Type.String({ examples: ['Mozilla/5.0'] })),
    createdAt: DateTime(),
    lastSeenAt: DateTime('Updated at most every 5 minutes.'),
    expiresAt: DateTime('Extended by use, up to 90 days after sign-in.'),
    current: Type.Boolean({ description: 'This is the session making the request.' }),
  },
  { $id: 'Session', title: 'Session' },
);

export const SignedInSchema = Type.Object(
  {
    status: Type.Literal('ok'),
    user: UserSchema,
    orgId: Nullable(Type.String({ description: 'The org the session acts for by default.' })),
    session: SessionSchema,
    token: Type.String({
      description:
        'The session token, shown once. Send it as `Authorization: Bearer …`; browsers also get it as an HttpOnly cookie.',
      examples: ['keel_sess_4fQ2mVx8Lr0bTq7WcYk3Hn9Zp1Ds6Ea5Gu2Jo8Xi'],
    }),
  },
  { $id: 'SignedIn', title: 'SignedIn' },
);

export const MfaRequiredSchema = Type.Object(
  {
    status: Type.Literal('mfa_required'),
    mfaToken: Type.String({
      description: 'Send it with a TOTP or recovery code to complete the sign-in (valid 5 minutes, once).',
    }),
    expiresAt: DateTime(),
  },
  { $id: 'MfaRequired', title: 'MfaRequired' },
);

export const SignUpBody = Type.Object({
  email: Email,
  password: Password,
  name: Type.Optional(Name),
  orgName: Type.Optional(OrgName),
  invitationToken: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'Join the inviting org instead of creating one; the email must be the invited one.',
    }),
  ),
});

export const LogInBody = Type.Object({
  email: Email,
  password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }),
});

export const PrincipalSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('api_key'), Type.Literal('session')]),
    id: Type.String({
      description: 'The key id, or the user id of a session.',
      examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'],
    }),
    orgId: Nullable(Type.String({ examples: ['org_01jd7x8m3q9f2k5v6w7y8z9a0b'] })),
    permissions: Type.Array(Type.String(), { examples: [['org:read', 'ledger:read']] }),
  },
  { $id: 'Principal', title: 'Principal' },
);

export const ChangePasswordBody = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }),
  newPassword: Password,
});

export const MeSchema = Type.Object(
  {
    user: UserSchema,
    orgId: Nullable(Type.String({ description: 'The org this request acts for.' })),
    role: Nullable(RoleSchema),
    permissions: Type.Array(Type.String(), { examples: [['org:read', 'members:read']] }),
  },
  { $id: 'Me', title: 'Me' },
);

const orgProperties = {
  id: Type.String({ examples: ['org_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
  name: OrgName,
  rateLimitPerMinute: Nullable(
    Type.Integer({ description: 'Requests per minute for the whole org; null: the deployment default.' }),
  ),
  createdAt: DateTime(),
  updatedAt: DateTime(),
};

export const OrgSchema = Type.Object(orgProperties, { $id: 'Org', title: 'Org' });
export const MyOrgSchema = Type.Object(
  { ...orgProperties, role: RoleSchema },
  { $id: 'MyOrg', title: 'MyOrg', description: 'An org you belong to, with your role in it.' },
);

export const CreateOrgBody = Type.Object({ name: OrgName });
export const UpdateOrgBody = Type.Object(
  { name: Type.Optional(OrgName), rateLimitPerMinute: Type.Optional(NullablePerMinute) },
  { minProperties: 1 },
);

export const OrgSecuritySchema = Type.Object(
  { adminIpAllowlist: Allowlist },
  { $id: 'OrgSecurity', title: 'OrgSecurity' },
);

export const MemberSchema = Type.Object(
  {
    userId: Type.String({ examples: ['usr_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    email: Nullable(Email, 'Null for a user who signed up with a wallet.'),
    name: Nullable(Name),
    role: RoleSchema,
    twoFactorEnabled: Type.Boolean(),
    joinedAt: DateTime(),
  },
  { $id: 'Member', title: 'Member' },
);

export const ChangeRoleBody = Type.Object({ role: RoleSchema });

export const InvitationSchema = Type.Object(
  {
    id: Type.String({ examples: ['inv_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    email: Email,
    role: RoleSchema,
    invitedBy: Nullable(Type.String()),
    createdAt: DateTime(),
    expiresAt: DateTime('Invitations expire after 7 days.'),
  },
  { $id: 'Invitation', title: 'Invitation' },
);

export const InviteBody = Type.Object({ email: Email, role: RoleSchema });

export const InvitationCreatedSchema = Type.Object(
  {
    invitation: InvitationSchema,
    token: Type.String({
      description: 'Shown once. The invitee accepts with it (it is also in the mailed link).',
      examples: ['keel_inv_4fQ2mVx8Lr0bTq7WcYk3Hn9Zp1Ds6Ea5Gu2Jo8Xi'],
    }),
    acceptUrl: Type.String({ examples: ['https://keel.example.com/invitations/accept?token=keel_inv_…'] }),
    mailed: Type.Boolean({
      description: 'Whether the invitation was mailed (false when mail is not set up).',
    }),
  },
  { $id: 'InvitationCreated', title: 'InvitationCreated' },
);

export const AcceptInvitationBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) });
export const AcceptedInvitationSchema = Type.Object({ orgId: Type.String(), role: RoleSchema });

const Metadata = Type.Record(
  Type.String({ maxLength: 64 }),
  Type.String({ maxLength: MAX_METADATA_VALUE_LENGTH }),
  {
    maxProperties: MAX_METADATA_ENTRIES,
    description: `Up to ${MAX_METADATA_ENTRIES} string pairs for your own bookkeeping.`,
    examples: [{ app: 'checkout-web', team: 'payments' }],
  },
);

export const ApiKeySchema = Type.Object(
  {
    id: Type.String({ examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    name: Name,
    environment: Type.Union([Type.Literal('live'), Type.Literal('test')]),
    scopes: Type.Array(ScopeSchema),
    expiresAt: Nullable(DateTime()),
    rateLimitPerMinute: Nullable(Type.Integer({ description: 'null: the deployment default per key.' })),
    ipAllowlist: Allowlist,
    metadata: Metadata,
    lastUsedAt: Nullable(DateTime('Recorded within about 10 seconds of use.')),
    createdBy: Nullable(Type.String()),
    createdAt: DateTime(),
    updatedAt: DateTime(),
    revokedAt: Nullable(DateTime()),
    secrets: Type.Array(
      Type.Object({
        hint: Type.String({ description: 'The last four characters of the secret.', examples: ['x9Qa'] }),
        createdAt: DateTime(),
        expiresAt: Nullable(DateTime('When a roll’s grace period ends for this secret.')),
      }),
      { description: 'The secrets that work now: one, or two during a roll’s grace period.' },
    ),
  },
  { $id: 'ApiKey', title: 'ApiKey' },
);

/**
 * The bodies that set a key's scopes. Built when the key routes are registered, after every
 * module has declared its permissions, so the scopes' `enum` lists each one (apiKeyScopes()).
 */
export function apiKeyBodies(scopes: readonly Permission[]) {
  const keySettings = {
    name: Name,
    scopes: Type.Array(Type.Unsafe<Permission>({ ...ScopeSchema, enum: [...scopes] }), {
      minItems: 1,
      maxItems: scopes.length,
      uniqueItems: true,
      description: 'Permissions the key holds; each must be one you hold.',
    }),
    expiresAt: Type.Optional(Nullable(DateTime('The key stops working then; null: never.'))),
    rateLimitPerMinute: Type.Optional(NullablePerMinute),
    ipAllowlist: Type.Optional(Allowlist),
    metadata: Type.Optional(Metadata),
  };
  const create = Type.Object({
    ...keySettings,
    environment: Type.Optional(
      Type.Unsafe<ApiKeyEnvironment>({
        type: 'string',
        enum: [...API_KEY_ENVIRONMENTS],
        default: 'live',
        description: 'Prefix of the key: keel_live_… or keel_test_…',
      }),
    ),
  });
  const update = Type.Object(
    {
      name: Type.Optional(keySettings.name),
      scopes: Type.Optional(keySettings.scopes),
      expiresAt: keySettings.expiresAt,
      rateLimitPerMinute: keySettings.rateLimitPerMinute,
      ipAllowlist: keySettings.ipAllowlist,
      metadata: keySettings.metadata,
    },
    { minProperties: 1 },
  );
  return { create, update };
}

export const ApiKeySecretSchema = Type.Object(
  {
    apiKey: ApiKeySchema,
    secret: Type.String({
      description: 'The key, shown this once. Keel keeps only its SHA-256.',
      examples: ['keel_live_4fQ2mVx8Lr0bTq7WcYk3Hn9Zp1Ds6Ea0Xb3kP'],
    }),
  },
  { $id: 'ApiKeySecret', title: 'ApiKeySecret' },
);

export const RollApiKeyBody = Type.Object({
  gracePeriodSeconds: Type.Integer({
    minimum: 0,
    maximum: MAX_ROLL_GRACE_SECONDS,
    description: 'How long the secrets that work now keep working (0: they stop at once). At most 7 days.',
    examples: [86_400],
  }),
});

export const RolledApiKeySchema = Type.Object(
  {
    apiKey: ApiKeySchema,
    secret: Type.String({ description: 'The new key, shown this once.' }),
    graceEndsAt: DateTime('When the previous secrets stop working.'),
  },
  { $id: 'RolledApiKey', title: 'RolledApiKey' },
);

export const ListApiKeysQuery = Type.Object({
  ...PageQuery.properties,
  includeRevoked: Type.Boolean({ default: false }),
});

export const IdParams = <Name extends string>(name: Name, example: string) =>
  Type.Object({ [name]: Type.String({ maxLength: 100, examples: [example] }) } as Record<
    Name,
    ReturnType<typeof Type.String>
  >);
