import { Type } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import { parseAllowlist } from './domain/cidr.ts';
import { actorOf, cursorAfter, presentInvitation, presentMember, presentOrg, unwrap } from './present.ts';
import {
  ChangeRoleBody,
  IdParams,
  InvitationCreatedSchema,
  InvitationSchema,
  InviteBody,
  MemberSchema,
  OrgSchema,
  OrgSecuritySchema,
  PageQuery,
  pageOf,
  UpdateOrgBody,
} from './schemas.ts';
import type { AccessService } from './service.ts';

const NoContent = Type.Null({ description: 'No content.' });

/** The org a request acts for: its settings, members and invitations. */
export function orgRoutes(deps: { service: AccessService }) {
  const { service } = deps;

  return async (app: App) => {
    app.get(
      '/v1/org',
      {
        config: { permission: 'org:read' },
        schema: {
          operationId: 'getOrg',
          summary: 'The org this request acts for',
          tags: ['orgs'],
          response: { 200: OrgSchema },
        },
      },
      async (request) => {
        const org = await service.getOrg(requireOrgId(request));
        if (!org) throw new KeelError('NOT_FOUND', 'No such org');
        return presentOrg(org);
      },
    );

    app.patch(
      '/v1/org',
      {
        config: { permission: 'org:update', auditAction: 'org.updated' },
        schema: {
          operationId: 'updateOrg',
          summary: 'Rename the org or change its rate limit',
          tags: ['orgs'],
          body: UpdateOrgBody,
          response: { 200: OrgSchema },
        },
      },
      async (request) => {
        const org = await service.updateOrg(requireOrgId(request), request.body);
        if (!org) throw new KeelError('NOT_FOUND', 'No such org');
        return presentOrg(org);
      },
    );

    app.get(
      '/v1/org/security',
      {
        config: { permission: 'security:read' },
        schema: {
          operationId: 'getOrgSecurity',
          summary: 'The org’s security settings',
          tags: ['orgs'],
          response: { 200: OrgSecuritySchema },
        },
      },
      async (request) => {
        const org = await service.getOrg(requireOrgId(request));
        if (!org) throw new KeelError('NOT_FOUND', 'No such org');
        return { adminIpAllowlist: [...org.adminIpAllowlist] };
      },
    );

    app.put(
      '/v1/org/security',
      {
        config: { permission: 'security:write', auditAction: 'org.security_settings_changed' },
        schema: {
          operationId: 'setOrgSecurity',
          summary: 'Set the org’s admin IP allowlist',
          description:
            'Admin routes of this org (those needing an admin permission) then answer 403 `IP_NOT_ALLOWED` to any ' +
            'other address, for sessions and API keys alike. A list that would exclude the address making the ' +
            'change is refused, so nobody locks themselves out.',
          tags: ['orgs'],
          body: OrgSecuritySchema,
          response: { 200: OrgSecuritySchema },
        },
      },
      async (request) => {
        const entries = request.body.adminIpAllowlist;
        const parsed = parseAllowlist(entries);
        if (parsed.ok && entries.length > 0 && !parsed.allowlist.allows(request.ip)) {
          throw new KeelError(
            'CONFLICT',
            `The allowlist does not include your address ${request.ip}: you would lock yourself out`,
          );
        }
        const updated = unwrap(await service.setAdminIpAllowlist(requireOrgId(request), entries));
        return { adminIpAllowlist: [...updated.org.adminIpAllowlist] };
      },
    );

    app.get(
      '/v1/members',
      {
        config: { permission: 'members:read' },
        schema: {
          operationId: 'listMembers',
          summary: 'List the org’s members',
          tags: ['members'],
          querystring: PageQuery,
          response: { 200: pageOf(MemberSchema, 'MemberPage') },
        },
      },
      async (request) => {
        const page = await service.listMembers(requireOrgId(request), {
          limit: request.query.limit,
          after: cursorAfter(request.query.cursor, 'usr'),
        });
        return { data: page.items.map(presentMember), nextCursor: page.nextCursor };
      },
    );

    app.patch(
      '/v1/members/:userId',
      {
        config: { permission: 'members:write', auditAction: 'member.role_changed' },
        schema: {
          operationId: 'changeMemberRole',
          summary: 'Change a member’s role',
          description:
            'You must hold every permission of both the current and the new role (so admins cannot make or unmake ' +
            'owners), and the org keeps at least one owner.',
          tags: ['members'],
          params: IdParams('userId', 'usr_01jd7x8m3q9f2k5v6w7y8z9a0b'),
          body: ChangeRoleBody,
          response: { 200: MemberSchema },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        unwrap(await service.changeRole(actorOf(request), orgId, request.params.userId, request.body.role));
        const member = await service.getMember(orgId, request.params.userId);
        if (!member) throw new KeelError('NOT_FOUND', `No member ${request.params.userId}`);
        return presentMember(member);
      },
    );

    app.delete(
      '/v1/members/:userId',
      {
        config: { permission: 'members:write', auditAction: 'member.removed' },
        schema: {
          operationId: 'removeMember',
          summary: 'Remove a member from the org',
          tags: ['members'],
          params: IdParams('userId', 'usr_01jd7x8m3q9f2k5v6w7y8z9a0b'),
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        unwrap(await service.removeMember(actorOf(request), requireOrgId(request), request.params.userId));
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/v1/invitations',
      {
        config: { permission: 'members:write', auditAction: 'invitation.created' },
        schema: {
          operationId: 'inviteMember',
          summary: 'Invite someone by email',
          description:
            'The invitation is mailed (when mail is set up) and its token is also returned here, once. It expires ' +
            'after 7 days. You can only invite into a role whose permissions you hold.',
          tags: ['members'],
          body: InviteBody,
          response: { 201: InvitationCreatedSchema },
        },
      },
      async (request, reply) => {
        const created = unwrap(await service.invite(actorOf(request), requireOrgId(request), request.body));
        return reply.code(201).send({
          invitation: presentInvitation(created.invitation),
          token: created.token,
          acceptUrl: created.acceptUrl,
          mailed: created.mailed,
        });
      },
    );

    app.get(
      '/v1/invitations',
      {
        config: { permission: 'members:read' },
        schema: {
          operationId: 'listInvitations',
          summary: 'List pending invitations, newest first',
          tags: ['members'],
          querystring: PageQuery,
          response: { 200: pageOf(InvitationSchema, 'InvitationPage') },
        },
      },
      async (request) => {
        const page = await service.listInvitations(requireOrgId(request), {
          limit: request.query.limit,
          after: cursorAfter(request.query.cursor, 'inv'),
        });
        return { data: page.items.map(presentInvitation), nextCursor: page.nextCursor };
      },
    );

    app.delete(
      '/v1/invitations/:invitationId',
      {
        config: { permission: 'members:write', auditAction: 'invitation.revoked' },
        schema: {
          operationId: 'revokeInvitation',
          summary: 'Revoke a pending invitation',
          tags: ['members'],
          params: IdParams('invitationId', 'inv_01jd7x8m3q9f2k5v6w7y8z9a0b'),
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        const revoked = await service.revokeInvitation(requireOrgId(request), request.params.invitationId);
        if (!revoked)
          throw new KeelError('NOT_FOUND', `No pending invitation ${request.params.invitationId}`);
        return reply.code(204).send(null);
      },
    );
  };
}
