import type { FastifyRequest } from 'fastify';
import type { Permission } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import { decodeCursor } from '../../infra/http/pagination.ts';
import type { ApiKey } from './api-keys.ts';
import type { Actor, Invitation, Member, Org, Result, Session, User } from './service.ts';

/** Turns an expected failure into the problem response; returns the success value otherwise. */
export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result;
  const retryAfterSeconds =
    result.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(result.retryAfterMs / 1000));
  throw new KeelError(result.code, result.detail, {
    ...(retryAfterSeconds === undefined
      ? {}
      : { headers: { 'retry-after': String(retryAfterSeconds) }, members: { retryAfterSeconds } }),
  });
}

export function actorOf(request: FastifyRequest): Actor {
  const principal = request.principal!;
  return { userId: principal.userId, permissions: principal.permissions };
}

/** The signed-in user behind a session-only route (account permissions are session-only). */
export function sessionOf(request: FastifyRequest): { id: string; userId: string; via: 'bearer' | 'cookie' } {
  if (!request.session) throw new KeelError('UNAUTHENTICATED', 'This route needs a session');
  return request.session;
}

export function cursorAfter(cursor: string | undefined, prefix: string): string | undefined {
  if (cursor === undefined) return undefined;
  const after = decodeCursor(cursor, prefix);
  if (!after) {
    throw new KeelError('VALIDATION_FAILED', 'cursor is not a nextCursor returned by this list', {
      errors: [{ path: '/cursor', in: 'query', message: 'is not a valid cursor' }],
    });
  }
  return after;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export const presentUser = (user: User) => ({
  id: user.id,
  email: user.email,
  emailVerifiedAt: iso(user.emailVerifiedAt),
  name: user.name,
  twoFactorEnabled: user.totpEnabledAt !== null,
  createdAt: user.createdAt.toISOString(),
});

export const presentSession = (session: Session, currentId: string | undefined) => ({
  id: session.id,
  method: session.method,
  ip: session.ip,
  userAgent: session.userAgent,
  createdAt: session.createdAt.toISOString(),
  lastSeenAt: session.lastSeenAt.toISOString(),
  expiresAt: session.expiresAt.toISOString(),
  current: session.id === currentId,
});

export const presentOrg = (org: Org) => ({
  id: org.id,
  name: org.name,
  rateLimitPerMinute: org.rateLimitPerMinute,
  createdAt: org.createdAt.toISOString(),
  updatedAt: org.updatedAt.toISOString(),
});

export const presentMember = (member: Member) => ({
  userId: member.userId,
  email: member.email,
  name: member.name,
  role: member.role,
  twoFactorEnabled: member.twoFactorEnabled,
  joinedAt: member.joinedAt.toISOString(),
});

export const presentInvitation = (invitation: Invitation) => ({
  id: invitation.id,
  email: invitation.email,
  role: invitation.role,
  invitedBy: invitation.invitedBy,
  createdAt: invitation.createdAt.toISOString(),
  expiresAt: invitation.expiresAt.toISOString(),
});

export const presentApiKey = (key: ApiKey) => ({
  id: key.id,
  name: key.name,
  environment: key.environment,
  // Stored scopes were checked against the permission table when they were granted.
  scopes: [...key.scopes] as Permission[],
  expiresAt: iso(key.expiresAt),
  rateLimitPerMinute: key.rateLimitPerMinute,
  ipAllowlist: [...key.ipAllowlist],
  metadata: { ...key.metadata },
  lastUsedAt: iso(key.lastUsedAt),
  createdBy: key.createdBy,
  createdAt: key.createdAt.toISOString(),
  updatedAt: key.updatedAt.toISOString(),
  revokedAt: iso(key.revokedAt),
  secrets: key.secrets.map((secret) => ({
    hint: secret.hint,
    createdAt: secret.createdAt.toISOString(),
    expiresAt: iso(secret.expiresAt),
  })),
});
