import { randomBytes } from 'node:crypto';
import { assembleModules } from '../src/app.ts';
import type { Permission } from '../src/infra/http/auth.ts';
import type { App } from '../src/infra/http/pipeline.ts';
import { type AccessModule, apiKeyScopes, type Role, rolePermissions } from '../src/platform/access/index.ts';

/**
 * Fixtures for route tests: orgs, users, sessions and API keys made through the access service
 * (not through HTTP, so they cost no rate-limit quota and need no mail).
 */
export const FIXTURE_PASSWORD = 'fixture password 123';

export function accessOf(app: App): AccessModule {
  const access = assembleModules(app.runtime).find((module) => module.name === 'access');
  if (!access) throw new Error('the access module is not assembled');
  return access as AccessModule;
}

export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomBytes(6).toString('hex')}@example.com`;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * A new org (with an owner) and an API key of it. The key's scopes are `permissions` when
 * given, else the permissions of `role` (default owner: every scope a key can hold).
 */
export async function createOrgWithApiKey(
  app: App,
  options: { permissions?: Permission[]; role?: Role } = {},
): Promise<{
  orgId: string;
  apiKey: string;
  keyId: string;
  ownerId: string;
  headers: Record<string, string>;
}> {
  const access = accessOf(app);
  const owner = await createUserSession(app);
  const scopes = options.permissions ?? [...rolePermissions(options.role ?? 'owner')];
  const created = await access.apiKeys.create(
    { userId: owner.userId, permissions: new Set<Permission>(apiKeyScopes()) },
    owner.orgId,
    { name: 'fixture key', environment: 'test', scopes },
  );
  if (!created.ok) throw new Error(`fixture key: ${created.detail}`);
  return {
    orgId: owner.orgId,
    apiKey: created.secret,
    keyId: created.apiKey.id,
    ownerId: owner.userId,
    headers: bearer(created.secret),
  };
}

/** A new user who owns a new org, signed in. */
export async function createUserSession(
  app: App,
  options: { email?: string; password?: string } = {},
): Promise<{ userId: string; orgId: string; token: string; email: string; headers: Record<string, string> }> {
  const email = options.email ?? uniqueEmail();
  const signedUp = await accessOf(app).service.signUp(
    { email, password: options.password ?? FIXTURE_PASSWORD },
    { ip: '127.0.0.1', userAgent: 'keel-test' },
  );
  if (!signedUp.ok) throw new Error(`fixture user: ${signedUp.detail}`);
  return {
    userId: signedUp.user.id,
    orgId: signedUp.orgId,
    token: signedUp.token,
    email,
    headers: bearer(signedUp.token),
  };
}

/**
 * A new user who is a `role` member of `orgId` (and of no other org), signed in. Their
 * requests act in `orgId` by default.
 */
export async function createMemberSession(
  app: App,
  orgId: string,
  role: Role,
): Promise<{ userId: string; token: string; email: string; headers: Record<string, string> }> {
  const access = accessOf(app);
  const email = uniqueEmail(role);
  const invited = await access.service.invite({ permissions: new Set(apiKeyScopes()) }, orgId, {
    email,
    role,
  });
  if (!invited.ok) throw new Error(`fixture invitation: ${invited.detail}`);
  const signedUp = await access.service.signUp(
    { email, password: FIXTURE_PASSWORD, invitationToken: invited.token },
    { ip: '127.0.0.1', userAgent: 'keel-test' },
  );
  if (!signedUp.ok) throw new Error(`fixture member: ${signedUp.detail}`);
  return { userId: signedUp.user.id, token: signedUp.token, email, headers: bearer(signedUp.token) };
}
