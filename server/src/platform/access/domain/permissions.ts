import type { Permission } from '../../../infra/http/auth.ts';

/**
 * The one place Keel decides who may do what. Every route declares the permission it needs
 * (`config.permission`); a role grants the permissions listed for it below, and an API key is
 * granted the subset of them chosen as its scopes. Nothing else grants a permission.
 *
 * A module that adds routes adds its permissions here, in the same commit.
 */
export const PERMISSIONS = {
  'account:read': { description: 'Read your own user, sessions and orgs.', admin: false, session: true },
  'account:write': {
    description: 'Change your own account: password, sessions, create orgs, accept invitations.',
    admin: false,
    session: true,
  },
  'org:read': { description: 'Read the org and its settings.', admin: false },
  'org:update': { description: 'Rename the org and change its limits.', admin: true },
  'security:read': { description: 'Read security settings: admin IP allowlist, 2FA policy.', admin: true },
  'security:write': { description: 'Change security settings.', admin: true },
  'members:read': { description: 'List members and pending invitations.', admin: false },
  'members:write': { description: 'Invite members, change their roles, remove them.', admin: true },
  'api_keys:read': { description: 'List API keys (never their secrets).', admin: false },
  'api_keys:write': { description: 'Create, change, roll and revoke API keys.', admin: false },
  'billing:read': { description: 'Read plans, usage and invoices.', admin: false },
  'billing:write': { description: 'Change the plan and payment methods.', admin: true },
  'usage:read': { description: 'Read metered usage and quotas.', admin: false },
  'usage:write': { description: 'Record usage events for metering.', admin: false },
  'events:read': { description: 'Read the org’s event stream.', admin: false },
  'webhooks:read': { description: 'List webhook endpoints and deliveries.', admin: false },
  'webhooks:write': { description: 'Manage webhook endpoints, replay deliveries.', admin: false },
  'audit:read': { description: 'Read and export the audit log.', admin: true },
  'compliance:read': { description: 'Read screening results and KYC cases.', admin: false },
  'compliance:write': { description: 'Screen addresses, decide KYC cases, run GDPR requests.', admin: true },
  'identity:read': { description: 'Read personhood verdicts and linked wallets.', admin: false },
  'identity:write': { description: 'Verify humans, link wallets, write attestations.', admin: false },
  'credentials:read': { description: 'Read DIDs and credentials.', admin: false },
  'credentials:write': { description: 'Issue and revoke credentials, manage DIDs.', admin: false },
  'gateway:read': { description: 'Read RPC endpoints and their health.', admin: false },
  'gateway:write': { description: 'Manage RPC endpoints and upstreams.', admin: false },
  'gateway:relay': { description: 'Send JSON-RPC requests through the gateway.', admin: false },
  'payments:read': { description: 'Read invoices, payments and refunds.', admin: false },
  'payments:write': { description: 'Create invoices, refund payments.', admin: false },
  'ledger:read': { description: 'Read accounts, balances and transfers.', admin: false },
  'ledger:write': { description: 'Post and void transfers, open accounts.', admin: false },
} as const satisfies Record<
  Permission,
  { readonly description: string; readonly admin: boolean; readonly session?: true }
>;

export type KnownPermission = keyof typeof PERMISSIONS;

export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as KnownPermission[];

export const ROLES = ['owner', 'admin', 'developer', 'billing', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

const orgPermissions = ALL_PERMISSIONS.filter((permission) => !isSessionOnly(permission));
const reads = orgPermissions.filter((permission) => permission.endsWith(':read'));
const domainWork: KnownPermission[] = [
  'identity:read',
  'identity:write',
  'credentials:read',
  'credentials:write',
  'gateway:read',
  'gateway:write',
  'gateway:relay',
  'payments:read',
  'payments:write',
  'ledger:read',
  'ledger:write',
];

/**
 * What each role may do in its org. Roles form no hierarchy in code: a role's reach is its row.
 * Who may grant a role follows from the same table: only someone holding every permission of a
 * role may give it (so an admin, lacking `billing:write`, cannot make an owner).
 */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<KnownPermission>>> = {
  owner: new Set(orgPermissions),
  admin: new Set(orgPermissions.filter((permission) => permission !== 'billing:write')),
  developer: new Set<KnownPermission>([
    'org:read',
    'members:read',
    'api_keys:read',
    'api_keys:write',
    'usage:read',
    'usage:write',
    'events:read',
    'webhooks:read',
    'webhooks:write',
    ...domainWork,
  ]),
  billing: new Set<KnownPermission>([
    'org:read',
    'members:read',
    'billing:read',
    'billing:write',
    'usage:read',
    'payments:read',
    'ledger:read',
  ]),
  viewer: new Set(reads.filter((permission) => !PERMISSIONS[permission].admin)),
};

/** Granted to every signed-in user, whatever their role: they act on the user, not an org. */
export const SESSION_PERMISSIONS: ReadonlySet<KnownPermission> = new Set(
  ALL_PERMISSIONS.filter(isSessionOnly),
);

/** The permissions an API key may be scoped to: anything an org role grants. */
export const API_KEY_SCOPES: readonly KnownPermission[] = orgPermissions;

export function isKnownPermission(value: string): value is KnownPermission {
  return Object.hasOwn(PERMISSIONS, value);
}

export function isSessionOnly(permission: KnownPermission): boolean {
  return 'session' in PERMISSIONS[permission];
}

/** An admin permission's routes may be fenced by the org's and the operator's IP allowlists. */
export function isAdminPermission(permission: Permission): boolean {
  return isKnownPermission(permission) && PERMISSIONS[permission].admin;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** The permissions a session of a member with `role` holds (`role` undefined: not a member). */
export function sessionPermissions(role: Role | undefined): ReadonlySet<Permission> {
  return role ? SESSION_ROLE_PERMISSIONS[role] : SESSION_PERMISSIONS;
}

const SESSION_ROLE_PERMISSIONS = Object.fromEntries(
  ROLES.map((role) => [role, new Set<Permission>([...SESSION_PERMISSIONS, ...ROLE_PERMISSIONS[role]])]),
) as unknown as Record<Role, ReadonlySet<Permission>>;

/** True when `holder` holds every one of `wanted`: the rule for granting roles and key scopes. */
export function holdsAll(holder: ReadonlySet<Permission>, wanted: Iterable<Permission>): boolean {
  for (const permission of wanted) if (!holder.has(permission)) return false;
  return true;
}
