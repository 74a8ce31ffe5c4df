import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
// Loads every module, so every module's permissions are declared, as in a running Keel.
import '../../../app.ts';
import type { Permission } from '../../../infra/http/auth.ts';
import { declaredPermissions, definePermissions } from '../../../infra/permissions.ts';
import {
  apiKeyScopes,
  holdsAll,
  isAdminPermission,
  permissionDeclaration,
  ROLES,
  type Role,
  rolePermissions,
  sessionPermissions,
} from './permissions.ts';

/**
 * The grants as they stood when the table was written out by hand in this file, before modules
 * declared their own permissions. The computed table must not drift from it by accident: a
 * change of grants is a change of this list too.
 */
const ORG_PERMISSIONS: readonly Permission[] = [
  'org:read',
  'org:update',
  'security:read',
  'security:write',
  'members:read',
  'members:write',
  'api_keys:read',
  'api_keys:write',
  'billing:read',
  'billing:write',
  'usage:read',
  'usage:write',
  'events:read',
  'webhooks:read',
  'webhooks:write',
  'audit:read',
  'compliance:read',
  'compliance:write',
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
const ADMIN_ONLY: readonly Permission[] = [
  'org:update',
  'security:read',
  'security:write',
  'members:write',
  'billing:write',
  'audit:read',
  'compliance:write',
];
const DOMAIN_WORK: readonly Permission[] = [
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
const GRANTS: Readonly<Record<Role, readonly Permission[]>> = {
  owner: ORG_PERMISSIONS,
  admin: ORG_PERMISSIONS.filter((permission) => permission !== 'billing:write'),
  developer: [
    'org:read',
    'members:read',
    'api_keys:read',
    'api_keys:write',
    'usage:read',
    'usage:write',
    'events:read',
    'webhooks:read',
    'webhooks:write',
    ...DOMAIN_WORK,
  ],
  billing: [
    'org:read',
    'members:read',
    'billing:read',
    'billing:write',
    'usage:read',
    'payments:read',
    'ledger:read',
  ],
  viewer: ORG_PERMISSIONS.filter(
    (permission) => permission.endsWith(':read') && !ADMIN_ONLY.includes(permission),
  ),
};
const SESSION: readonly Permission[] = ['account:read', 'account:write'];

const sorted = (permissions: Iterable<Permission>) => [...permissions].sort();

describe('the role → permission table', () => {
  test('computed from the modules’ declarations, it grants each role exactly what it granted before', () => {
    for (const role of ROLES) assert.deepEqual(sorted(rolePermissions(role)), sorted(GRANTS[role]), role);
    assert.deepEqual(sorted(apiKeyScopes()), sorted(ORG_PERMISSIONS));
    assert.deepEqual(sorted(ORG_PERMISSIONS.filter(isAdminPermission)), sorted(ADMIN_ONLY));
    assert.deepEqual(sorted(sessionPermissions(undefined)), sorted(SESSION));
  });

  test('every permission is <resource>:<action>, described, and owned by one module', () => {
    for (const [permission, { owner, declaration }] of declaredPermissions()) {
      assert.match(permission, /^[a-z_]+:[a-z_]+$/);
      assert.ok(declaration.description.length > 0, permission);
      assert.ok(owner.length > 0, permission);
    }
    assert.throws(
      () =>
        definePermissions('someone-else', { 'ledger:read': { description: 'x', admin: false, roles: [] } }),
      /declared by ledger and again by someone-else/,
    );
  });

  test('owners hold every org permission; every other role holds a strict subset of it', () => {
    assert.deepEqual(sorted(rolePermissions('owner')), sorted(apiKeyScopes()));
    for (const role of ROLES.filter((r) => r !== 'owner')) {
      assert.ok(holdsAll(rolePermissions('owner'), rolePermissions(role)));
      assert.ok(rolePermissions(role).size < rolePermissions('owner').size, role);
    }
  });

  test('admins cannot grant owner: they lack billing:write', () => {
    assert.ok(!holdsAll(rolePermissions('admin'), rolePermissions('owner')));
    assert.ok(holdsAll(rolePermissions('admin'), rolePermissions('developer')));
  });

  test('viewers only read, and never admin reads', () => {
    for (const permission of rolePermissions('viewer')) {
      assert.ok(permission.endsWith(':read'), permission);
      assert.ok(!isAdminPermission(permission), permission);
    }
  });

  test('account permissions belong to sessions, never to roles or API keys', () => {
    for (const permission of sessionPermissions(undefined)) {
      assert.ok(!apiKeyScopes().includes(permission));
      for (const role of ROLES) assert.ok(!rolePermissions(role).has(permission));
    }
    assert.ok(sessionPermissions('viewer').has('account:write'));
    assert.ok(!sessionPermissions(undefined).has('org:read'));
  });

  test('a permission declared later (a new module) joins the table with the roles it names', () => {
    definePermissions('table-probe', {
      'probe:read': { description: 'Read probes.', admin: false, roles: ['viewer'] },
    });
    assert.ok(rolePermissions('viewer').has('probe:read'));
    assert.ok(rolePermissions('owner').has('probe:read'));
    assert.ok(!rolePermissions('developer').has('probe:read'));
    assert.equal(permissionDeclaration('probe:read')?.description, 'Read probes.');
  });
});
