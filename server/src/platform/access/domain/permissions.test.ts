import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ALL_PERMISSIONS,
  API_KEY_SCOPES,
  holdsAll,
  isAdminPermission,
  PERMISSIONS,
  ROLE_PERMISSIONS,
  ROLES,
  SESSION_PERMISSIONS,
  sessionPermissions,
} from './permissions.ts';

describe('the role → permission table', () => {
  test('every permission is <resource>:<action> and described', () => {
    for (const permission of ALL_PERMISSIONS) {
      assert.match(permission, /^[a-z_]+:[a-z_]+$/);
      assert.ok(PERMISSIONS[permission].description.length > 0);
    }
  });

  test('owners hold every org permission; every other role holds a strict subset of it', () => {
    assert.deepEqual([...ROLE_PERMISSIONS.owner].sort(), [...API_KEY_SCOPES].sort());
    for (const role of ROLES.filter((r) => r !== 'owner')) {
      assert.ok(holdsAll(ROLE_PERMISSIONS.owner, ROLE_PERMISSIONS[role]));
      assert.ok(ROLE_PERMISSIONS[role].size < ROLE_PERMISSIONS.owner.size, role);
    }
  });

  test('admins cannot grant owner: they lack billing:write', () => {
    assert.ok(!holdsAll(ROLE_PERMISSIONS.admin, ROLE_PERMISSIONS.owner));
    assert.ok(holdsAll(ROLE_PERMISSIONS.admin, ROLE_PERMISSIONS.developer));
  });

  test('viewers only read, and never admin reads', () => {
    for (const permission of ROLE_PERMISSIONS.viewer) {
      assert.ok(permission.endsWith(':read'), permission);
      assert.ok(!isAdminPermission(permission), permission);
    }
  });

  test('only owners and admins hold admin permissions', () => {
    for (const role of ['developer', 'billing', 'viewer'] as const) {
      const admin = [...ROLE_PERMISSIONS[role]].filter(isAdminPermission);
      assert.deepEqual(admin, role === 'billing' ? ['billing:write'] : [], role);
    }
  });

  test('account permissions belong to sessions, never to roles or API keys', () => {
    for (const permission of SESSION_PERMISSIONS) {
      assert.ok(!API_KEY_SCOPES.includes(permission));
      for (const role of ROLES) assert.ok(!ROLE_PERMISSIONS[role].has(permission));
    }
    assert.ok(sessionPermissions(undefined).has('account:read'));
    assert.ok(sessionPermissions('viewer').has('account:write'));
    assert.ok(!sessionPermissions(undefined).has('org:read'));
  });
});
