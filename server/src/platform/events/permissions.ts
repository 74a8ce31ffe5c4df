import { definePermissions } from '../../infra/permissions.ts';

export const EVENTS_PERMISSIONS = definePermissions('events', {
  'events:read': {
    description: 'Read the org’s event stream.',
    admin: false,
    roles: ['admin', 'developer', 'viewer'],
  },
});
