import { definePermissions } from '../../infra/permissions.ts';

/** The permissions of access's own routes: the account, the org, members and API keys. */
export const ACCESS_PERMISSIONS = definePermissions('access', {
  'account:read': { description: 'Read your own user, sessions and orgs.', session: true },
  'account:write': {
    description: 'Change your own account: password, sessions, create orgs, accept invitations.',
    session: true,
  },
  'org:read': {
    description: 'Read the org and its settings.',
    admin: false,
    roles: ['admin', 'developer', 'billing', 'viewer'],
  },
  'org:update': { description: 'Rename the org and change its limits.', admin: true, roles: ['admin'] },
  'security:read': {
    description: 'Read security settings: admin IP allowlist, 2FA policy.',
    admin: true,
    roles: ['admin'],
  },
  'security:write': { description: 'Change security settings.', admin: true, roles: ['admin'] },
  'members:read': {
    description: 'List members and pending invitations.',
    admin: false,
    roles: ['admin', 'developer', 'billing', 'viewer'],
  },
  'members:write': {
    description: 'Invite members, change their roles, remove them.',
    admin: true,
    roles: ['admin'],
  },
  'api_keys:read': {
    description: 'List API keys (never their secrets).',
    admin: false,
    roles: ['admin', 'developer', 'viewer'],
  },
  'api_keys:write': {
    description: 'Create, change, roll and revoke API keys.',
    admin: false,
    roles: ['admin', 'developer'],
  },
});

/**
 * The permissions of features whose modules are not built yet, declared here so that roles and
 * API key scopes can hold them already: a key scoped to `payments:read` today keeps its scope
 * when payments ships. The module that implements a feature moves its lines into its own
 * `definePermissions` call (and out of this list) in the same commit.
 */
export const PLANNED_PERMISSIONS = definePermissions('access', {
  'billing:read': {
    description: 'Read plans, usage and invoices.',
    admin: false,
    roles: ['admin', 'billing', 'viewer'],
  },
  'billing:write': {
    description: 'Change the plan and payment methods.',
    // Owners only, with the billing role: so an admin cannot make someone an owner (docs/access.md).
    admin: true,
    roles: ['billing'],
  },
  'compliance:read': {
    description: 'Read screening results and KYC cases.',
    admin: false,
    roles: ['admin', 'viewer'],
  },
  'compliance:write': {
    description: 'Screen addresses, decide KYC cases, run GDPR requests.',
    admin: true,
    roles: ['admin'],
  },
  'credentials:read': {
    description: 'Read DIDs and credentials.',
    admin: false,
    roles: ['admin', 'developer', 'viewer'],
  },
  'credentials:write': {
    description: 'Issue and revoke credentials, manage DIDs.',
    admin: false,
    roles: ['admin', 'developer'],
  },
  'gateway:read': {
    description: 'Read RPC endpoints and their health.',
    admin: false,
    roles: ['admin', 'developer', 'viewer'],
  },
  'gateway:write': {
    description: 'Manage RPC endpoints and upstreams.',
    admin: false,
    roles: ['admin', 'developer'],
  },
  'gateway:relay': {
    description: 'Send JSON-RPC requests through the gateway.',
    admin: false,
    roles: ['admin', 'developer'],
  },
  'payments:read': {
    description: 'Read invoices, payments and refunds.',
    admin: false,
    roles: ['admin', 'developer', 'billing', 'viewer'],
  },
  'payments:write': {
    description: 'Create invoices, refund payments.',
    admin: false,
    roles: ['admin', 'developer'],
  },
});
