import { Type } from 'typebox';
import type { Config } from '../../config.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { clearedSessionCookie, cookieSettings, sessionCookie } from './hooks.ts';
import {
  actorOf,
  cursorAfter,
  presentOrg,
  presentSession,
  presentUser,
  sessionOf,
  unwrap,
} from './present.ts';
import {
  AcceptedInvitationSchema,
  AcceptInvitationBody,
  ChangePasswordBody,
  CreateOrgBody,
  IdParams,
  LogInBody,
  MeSchema,
  MfaRequiredSchema,
  MyOrgSchema,
  OrgSchema,
  PageQuery,
  PrincipalSchema,
  pageOf,
  SessionSchema,
  SignedInSchema,
  SignUpBody,
} from './schemas.ts';
import type { AccessService } from './service.ts';

const NoContent = Type.Null({ description: 'No content.' });

/** Sign-up, sign-in and sign-out; the signed-in user's own account, sessions and orgs. */
export function accountRoutes(deps: { config: Config; service: AccessService }) {
  const { config, service } = deps;
  const cookies = cookieSettings(config);

  return async (app: App) => {
    app.post(
      '/v1/auth/signup',
      {
        schema: {
          operationId: 'signUp',
          summary: 'Create an account with email and password',
          description:
            'Creates the user, an org they own (or, with `invitationToken`, joins the inviting org) and a session. ' +
            'The session token is in the body once and in an HttpOnly cookie for browsers. Public: limited per address.',
          tags: ['auth'],
          body: SignUpBody,
          response: { 201: SignedInSchema },
        },
      },
      async (request, reply) => {
        const signedUp = unwrap(
          await service.signUp(request.body, { ip: request.ip, userAgent: request.headers['user-agent'] }),
        );
        reply.header('set-cookie', sessionCookie(signedUp.token, signedUp.session.expiresAt, cookies));
        return reply.code(201).send({
          status: 'ok' as const,
          user: presentUser(signedUp.user),
          orgId: signedUp.orgId,
          session: presentSession(signedUp.session, signedUp.session.id),
          token: signedUp.token,
        });
      },
    );

    app.post(
      '/v1/auth/login',
      {
        schema: {
          operationId: 'logIn',
          summary: 'Sign in with email and password',
          description:
            'Answers `status: ok` with a session, or `status: mfa_required` with an `mfaToken` when the user has ' +
            'two-factor authentication on. Failed attempts back off and then lock out, per account and per address ' +
            '(429 `LOGIN_THROTTLED` with `Retry-After`). Public: limited per address.',
          tags: ['auth'],
          body: LogInBody,
          response: { 200: Type.Union([SignedInSchema, MfaRequiredSchema]) },
        },
      },
      async (request, reply) => {
        const result = unwrap(
          await service.logIn(request.body, { ip: request.ip, userAgent: request.headers['user-agent'] }),
        );
        if (result.status === 'mfa_required') {
          return {
            status: result.status,
            mfaToken: result.mfaToken,
            expiresAt: result.expiresAt.toISOString(),
          };
        }
        reply.header('set-cookie', sessionCookie(result.token, result.session.expiresAt, cookies));
        const membership = await service.listOrgsOfUser(result.user.id, { limit: 1 });
        return {
          status: result.status,
          user: presentUser(result.user),
          orgId: membership.items[0]?.id ?? null,
          session: presentSession(result.session, result.session.id),
          token: result.token,
        };
      },
    );

    app.get(
      '/v1/auth/whoami',
      {
        config: { authenticated: true },
        schema: {
          operationId: 'whoAmI',
          summary: 'Who the credential of this request is, and what it may do',
          description:
            'Checks an API key or session without doing anything else: answered from the verified credential, ' +
            'with no database read on the hot path.',
          tags: ['auth'],
          response: { 200: PrincipalSchema },
        },
      },
      async (request) => {
        const principal = request.principal!;
        return {
          kind: principal.kind,
          id: principal.id,
          orgId: principal.orgId || null,
          permissions: [...principal.permissions].sort(),
        };
      },
    );

    app.post(
      '/v1/auth/logout',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'logOut',
          summary: 'Sign out: revoke the current session',
          tags: ['auth'],
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        const session = sessionOf(request);
        await service.revokeSession(session.userId, session.id);
        reply.header('set-cookie', clearedSessionCookie(cookies));
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/v1/me',
      {
        config: { permission: 'account:read' },
        schema: {
          operationId: 'getMe',
          summary: 'The signed-in user, and the org and role this request acts with',
          description: 'Name another of your orgs with the `Keel-Org` header to act in it.',
          tags: ['account'],
          response: { 200: MeSchema },
        },
      },
      async (request) => {
        const session = sessionOf(request);
        const user = await service.findUserById(session.userId);
        if (!user) throw new KeelError('UNAUTHENTICATED', 'The user no longer exists');
        const orgId = request.orgId ?? null;
        const membership = orgId ? await service.getMembership(orgId, user.id) : undefined;
        return {
          user: presentUser(user),
          orgId,
          role: membership?.role ?? null,
          permissions: [...request.principal!.permissions].sort(),
        };
      },
    );

    app.post(
      '/v1/me/password',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'changePassword',
          summary: 'Change your password; signs out every other session',
          tags: ['account'],
          body: ChangePasswordBody,
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        const session = sessionOf(request);
        unwrap(
          await service.changePassword(
            session.userId,
            request.body.currentPassword,
            request.body.newPassword,
            session.id,
          ),
        );
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/v1/sessions',
      {
        config: { permission: 'account:read' },
        schema: {
          operationId: 'listSessions',
          summary: 'List your live sessions, newest first',
          tags: ['account'],
          querystring: PageQuery,
          response: { 200: pageOf(SessionSchema, 'SessionPage') },
        },
      },
      async (request) => {
        const session = sessionOf(request);
        const page = await service.listSessions(session.userId, {
          limit: request.query.limit,
          after: cursorAfter(request.query.cursor, 'ses'),
        });
        return {
          data: page.items.map((item) => presentSession(item, session.id)),
          nextCursor: page.nextCursor,
        };
      },
    );

    app.delete(
      '/v1/sessions/:sessionId',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'revokeSession',
          summary: 'Revoke one of your sessions (sign out that device)',
          tags: ['account'],
          params: IdParams('sessionId', 'ses_01jd7x8m3q9f2k5v6w7y8z9a0b'),
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        const session = sessionOf(request);
        const revoked = await service.revokeSession(session.userId, request.params.sessionId);
        if (!revoked) throw new KeelError('NOT_FOUND', `No session ${request.params.sessionId}`);
        if (request.params.sessionId === session.id)
          reply.header('set-cookie', clearedSessionCookie(cookies));
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/v1/orgs',
      {
        config: { permission: 'account:read' },
        schema: {
          operationId: 'listMyOrgs',
          summary: 'List the orgs you belong to, with your role in each',
          tags: ['account'],
          querystring: PageQuery,
          response: { 200: pageOf(MyOrgSchema, 'MyOrgPage') },
        },
      },
      async (request) => {
        const session = sessionOf(request);
        const page = await service.listOrgsOfUser(session.userId, {
          limit: request.query.limit,
          after: cursorAfter(request.query.cursor, 'org'),
        });
        return {
          data: page.items.map((org) => ({ ...presentOrg(org), role: org.role })),
          nextCursor: page.nextCursor,
        };
      },
    );

    app.post(
      '/v1/orgs',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'createOrg',
          summary: 'Create an org; you become its owner',
          tags: ['account'],
          body: CreateOrgBody,
          response: { 201: OrgSchema },
        },
      },
      async (request, reply) => {
        const org = await service.createOrgForUser(sessionOf(request).userId, request.body.name);
        return reply.code(201).header('location', '/v1/org').send(presentOrg(org));
      },
    );

    app.post(
      '/v1/invitations/accept',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'acceptInvitation',
          summary: 'Accept an invitation: join its org with its role',
          description:
            'The invitation must have been sent to your email. New users can instead sign up with `invitationToken`.',
          tags: ['account'],
          body: AcceptInvitationBody,
          response: { 200: AcceptedInvitationSchema },
        },
      },
      async (request) => {
        const accepted = unwrap(await service.acceptInvitation(actorOf(request).userId!, request.body.token));
        return { orgId: accepted.orgId, role: accepted.role };
      },
    );
  };
}
