import { definePermissions } from '../../infra/permissions.ts';

/** Identity's permissions, also needed by wallet linking and attestations. */
export const IDENTITY_PERMISSIONS = definePermissions('identity', {
  'identity:read': {
    description: 'Read personhood verdicts and linked wallets.',
    admin: false,
    roles: ['admin', 'developer', 'viewer'],
  },
  'identity:write': {
    description: 'Verify humans, link wallets, write attestations.',
    admin: false,
    roles: ['admin', 'developer'],
  },
});
