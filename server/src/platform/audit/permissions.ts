import { definePermissions } from '../../infra/permissions.ts';

export const AUDIT_PERMISSIONS = definePermissions('audit', {
  'audit:read': { description: 'Read and export the audit log.', admin: true, roles: ['admin'] },
});
