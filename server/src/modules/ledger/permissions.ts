import { definePermissions } from '../../infra/permissions.ts';

export const LEDGER_PERMISSIONS = definePermissions('ledger', {
  'ledger:read': {
    description: 'Read accounts, balances and transfers.',
    admin: false,
    roles: ['admin', 'developer', 'billing', 'viewer'],
  },
  'ledger:write': {
    description: 'Post and void transfers, open accounts.',
    admin: false,
    roles: ['admin', 'developer'],
  },
});
