import { definePermissions } from '../../infra/permissions.ts';

export const METERING_PERMISSIONS = definePermissions('metering', {
  'usage:read': {
    description: 'Read metered usage and quotas.',
    admin: false,
    roles: ['admin', 'developer', 'billing', 'viewer'],
  },
  'usage:write': {
    description: 'Record usage events for metering.',
    admin: false,
    roles: ['admin', 'developer'],
  },
});
