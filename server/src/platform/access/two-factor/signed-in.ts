import type { FastifyReply } from 'fastify';
import { type CookieSettings, sessionCookie } from '../hooks.ts';
import { presentSession, presentUser } from '../present.ts';
import type { AccessService, Session, User } from '../service.ts';

/**
 * The answer of every way to sign in (password, second factor, wallet, SSO): the session token
 * in the body once and in the HttpOnly cookie, as `SignedInSchema` describes.
 */
export async function signedIn(
  reply: FastifyReply,
  deps: { access: Pick<AccessService, 'listOrgsOfUser'>; cookies: CookieSettings },
  outcome: { user: User; session: Session; token: string },
) {
  reply.header('set-cookie', sessionCookie(outcome.token, outcome.session.expiresAt, deps.cookies));
  const orgs = await deps.access.listOrgsOfUser(outcome.user.id, { limit: 1 });
  return {
    status: 'ok' as const,
    user: presentUser(outcome.user),
    orgId: orgs.items[0]?.id ?? null,
    session: presentSession(outcome.session, outcome.session.id),
    token: outcome.token,
  };
}

export const mfaRequired = (outcome: { mfaToken: string; expiresAt: Date }) => ({
  status: 'mfa_required' as const,
  mfaToken: outcome.mfaToken,
  expiresAt: outcome.expiresAt.toISOString(),
});
