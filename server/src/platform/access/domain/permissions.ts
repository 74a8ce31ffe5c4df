import type { Permission } from '../../../infra/http/auth.ts';
import {
  declaredPermissions,
  isSessionPermission,
  type PermissionDeclaration,
} from '../../../infra/permissions.ts';

/**
 * The one place Keel decides who may do what. Every route declares the permission it needs
 * (`config.permission`); each module declares its permissions with `definePermissions`, naming
 * the roles that hold each by default; the role table below is computed from those
 * declarations. An API key is granted the subset of org permissions chosen as its scopes.
 * Nothing else grants a permission.
 */
export const ROLES = ['owner', 'admin', 'developer', 'billing', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

declare module '../../../infra/permissions.ts' {
  interface KeelRoles {
    admin: true;
    developer: true;
    billing: true;
    viewer: true;
  }
}

interface Table {
  /** How many permissions were declared when the table was computed. */
  readonly declared: number;
  readonly roles: Readonly<Record<Role, ReadonlySet<Permission>>>;
  /** Roles' permissions plus the session permissions: what a member's session holds. */
  readonly sessionRoles: Readonly<Record<Role, ReadonlySet<Permission>>>;
  readonly session: ReadonlySet<Permission>;
  readonly scopes: readonly Permission[];
}

let table: Table | undefined;

/**
 * The table for every permission declared so far. Modules declare theirs when they load, which
 * is before any request is served; a later declaration (a test's) recomputes it.
 */
function current(): Table {
  const declared = declaredPermissions();
  if (table?.declared === declared.size) return table;
  const org: Permission[] = [];
  const session: Permission[] = [];
  const granted = new Map<Role, Permission[]>(ROLES.map((role) => [role, []]));
  for (const [permission, { declaration, owner }] of [...declared].sort(([a], [b]) => a.localeCompare(b))) {
    if (isSessionPermission(declaration)) {
      session.push(permission);
      continue;
    }
    org.push(permission);
    granted.get('owner')!.push(permission);
    for (const role of declaration.roles) {
      if (!(ROLES as readonly string[]).includes(role) || (role as string) === 'owner') {
        throw new Error(`permission ${permission} (declared by ${owner}) names an unknown role: ${role}`);
      }
      granted.get(role)!.push(permission);
    }
  }
  const sessionSet = new Set(session);
  const roles = Object.fromEntries(
    ROLES.map((role) => [role, new Set(granted.get(role))]),
  ) as unknown as Record<Role, ReadonlySet<Permission>>;
  const sessionRoles = Object.fromEntries(
    ROLES.map((role) => [role, new Set<Permission>([...session, ...roles[role]])]),
  ) as unknown as Record<Role, ReadonlySet<Permission>>;
  table = { declared: declared.size, roles, sessionRoles, session: sessionSet, scopes: org };
  return table;
}

/**
 * What each role may do in its org. Roles form no hierarchy in code: a role's reach is its row.
 * Who may grant a role follows from the same table: only someone holding every permission of a
 * role may give it (so an admin, lacking `billing:write`, cannot make an owner).
 */
export function rolePermissions(role: Role): ReadonlySet<Permission> {
  return current().roles[role];
}

/** The permissions an API key may be scoped to: anything an org role grants, sorted. */
export function apiKeyScopes(): readonly Permission[] {
  return current().scopes;
}

export function isKnownPermission(value: string): value is Permission {
  return declaredPermissions().has(value as Permission);
}

export function permissionDeclaration(permission: Permission): PermissionDeclaration | undefined {
  return declaredPermissions().get(permission)?.declaration;
}

/** Held by every signed-in user, whatever their role: they act on the user, not an org. */
export function isSessionOnly(permission: Permission): boolean {
  const declaration = permissionDeclaration(permission);
  return declaration !== undefined && isSessionPermission(declaration);
}

/** An admin permission's routes may be fenced by the org's and the operator's IP allowlists. */
export function isAdminPermission(permission: Permission): boolean {
  const declaration = permissionDeclaration(permission);
  return declaration !== undefined && !isSessionPermission(declaration) && declaration.admin;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** The permissions a session of a member with `role` holds (`role` undefined: not a member). */
export function sessionPermissions(role: Role | undefined): ReadonlySet<Permission> {
  const { session, sessionRoles } = current();
  return role ? sessionRoles[role] : session;
}

/** True when `holder` holds every one of `wanted`: the rule for granting roles and key scopes. */
export function holdsAll(holder: ReadonlySet<Permission>, wanted: Iterable<Permission>): boolean {
  for (const permission of wanted) if (!holder.has(permission)) return false;
  return true;
}
