import type { Permission } from './http/auth.ts';

/**
 * The roles a permission can name as holding it by default, as a type. The access platform, which
 * owns the roles, fills it by declaration merging; the owner role is not among them, because an
 * owner holds every org permission.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the access platform
export interface KeelRoles {}

export type GrantableRole = keyof KeelRoles & string;

/** A permission an org role or an API key scope can hold. */
export interface OrgPermission {
  /** For people: what holding it lets you do, in a sentence. */
  readonly description: string;
  /**
   * An admin permission: its routes are fenced by the org's and the operator's IP allowlists,
   * and only owners and the roles listed below hold it.
   */
  readonly admin: boolean;
  /** The roles besides the owner that hold it by default. */
  readonly roles: readonly GrantableRole[];
}

/** A permission every signed-in user holds over their own account; no role or key holds it. */
export interface SessionPermission {
  readonly description: string;
  readonly session: true;
}

export type PermissionDeclaration = OrgPermission | SessionPermission;

interface Registered {
  readonly owner: string;
  readonly declaration: PermissionDeclaration;
}

/** Every declared permission, registered when its module loads. Only ever grows. */
const registry = new Map<Permission, Registered>();

const PERMISSION_PATTERN = /^[a-z][a-z_]*:[a-z][a-z_]*$/;

/**
 * Declares the permissions a module's routes need (`config.permission`), with who holds each by
 * default. The access platform computes the role table from these declarations and is the one
 * place that decides; a permission named by a route but declared by no module stops the app from
 * starting. A permission another module owns is a programmer error.
 *
 * ```ts
 * export const LEDGER_PERMISSIONS = definePermissions('ledger', {
 *   'ledger:read': { description: 'Read accounts…', admin: false, roles: ['admin', 'viewer'] },
 * });
 * ```
 */
export function definePermissions<const Declarations extends Record<Permission, PermissionDeclaration>>(
  owner: string,
  declarations: Declarations,
): Declarations {
  for (const [permission, declaration] of Object.entries(declarations) as [
    Permission,
    PermissionDeclaration,
  ][]) {
    if (!PERMISSION_PATTERN.test(permission)) {
      throw new Error(`permission must look like resource:action (lowercase): ${permission}`);
    }
    const existing = registry.get(permission);
    if (existing && existing.owner !== owner) {
      throw new Error(`permission ${permission} is declared by ${existing.owner} and again by ${owner}`);
    }
    registry.set(permission, { owner, declaration });
  }
  return declarations;
}

/** Every declared permission, its owner and its declaration. */
export function declaredPermissions(): ReadonlyMap<Permission, Registered> {
  return registry;
}

export function isSessionPermission(declaration: PermissionDeclaration): declaration is SessionPermission {
  return 'session' in declaration;
}
