import { definePermissions } from '../../infra/permissions.ts';

export const WEBHOOKS_PERMISSIONS = definePermissions('webhooks', {
  'webhooks:read': {
    description: 'List webhook endpoints and deliveries.',
    admin: false,
    roles: ['admin', 'developer', 'viewer'],
  },
  'webhooks:write': {
    description: 'Manage webhook endpoints, replay deliveries.',
    admin: false,
    roles: ['admin', 'developer'],
  },
});
