import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  accessOf,
  createMemberSession,
  createOrgWithApiKey,
  createUserSession,
  FIXTURE_PASSWORD,
  uniqueEmail,
} from '../../../test/fixtures.ts';
import { useTestApp } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { INVITATION_TTL_MS } from './service.ts';

describe('org routes: the org, its security settings, members and invitations', () => {
  const clock = manualClock(new Date());
  const t = useTestApp({ clock, config: { rateLimit: { ipPerMinute: 100_000 } } });
  const { inject } = t;

  describe('GET and PATCH /v1/org', () => {
    test('reads and renames the org, and sets its rate limit', async () => {
      const owner = await createUserSession(t.app);
      const renamed = await inject('PATCH', '/v1/org', {
        headers: owner.headers,
        payload: { name: 'Renamed', rateLimitPerMinute: 600 },
      });
      assert.equal(renamed.statusCode, 200);
      assert.equal(renamed.json().name, 'Renamed');
      const read = await inject('GET', '/v1/org', { headers: owner.headers });
      assert.equal(read.json().rateLimitPerMinute, 600);
      assert.equal(read.json().id, owner.orgId);
    });

    test('validation: an empty body and a zero limit are refused', async () => {
      const owner = await createUserSession(t.app);
      assert.equal(
        (await inject('PATCH', '/v1/org', { headers: owner.headers, payload: {} })).statusCode,
        400,
      );
      const zero = await inject('PATCH', '/v1/org', {
        headers: owner.headers,
        payload: { rateLimitPerMinute: 0 },
      });
      assert.equal(zero.statusCode, 400);
    });

    test('authorization: a viewer reads but cannot rename; anonymous gets 401', async () => {
      const owner = await createUserSession(t.app);
      const viewer = await createMemberSession(t.app, owner.orgId, 'viewer');
      assert.equal((await inject('GET', '/v1/org', { headers: viewer.headers })).statusCode, 200);
      const rename = await inject('PATCH', '/v1/org', { headers: viewer.headers, payload: { name: 'Mine' } });
      assert.equal(rename.statusCode, 403);
      assert.equal((await inject('GET', '/v1/org')).statusCode, 401);
    });

    test('an API key acts only in its own org', async () => {
      const key = await createOrgWithApiKey(t.app, { permissions: ['org:read'] });
      const other = await createUserSession(t.app);
      const read = await inject('GET', '/v1/org', { headers: { ...key.headers, 'keel-org': other.orgId } });
      assert.equal(read.json().id, key.orgId, 'Keel-Org means nothing to an API key');
    });
  });

  describe('/v1/org/security', () => {
    test('an admin IP allowlist fences the org’s admin routes, for sessions and keys', async () => {
      const owner = await createUserSession(t.app);
      const key = await createAccessKey(owner.orgId, ['members:write', 'members:read']);
      const office = '203.0.113.5';
      const set = await inject('PUT', '/v1/org/security', {
        headers: owner.headers,
        payload: { adminIpAllowlist: ['203.0.113.0/24'] },
        remoteAddress: office,
      });
      assert.equal(set.statusCode, 200);
      assert.deepEqual(set.json().adminIpAllowlist, ['203.0.113.0/24']);
      // An admin route from elsewhere: refused, by session and by key alike.
      const elsewhere = '198.51.100.1';
      const invite = { email: uniqueEmail(), role: 'viewer' };
      const fromHome = await inject('POST', '/v1/invitations', {
        headers: owner.headers,
        payload: invite,
        remoteAddress: elsewhere,
      });
      assert.equal(fromHome.statusCode, 403);
      assert.equal(fromHome.json().code, 'IP_NOT_ALLOWED');
      const keyFromHome = await inject('POST', '/v1/invitations', {
        headers: key.headers,
        payload: invite,
        remoteAddress: elsewhere,
      });
      assert.equal(keyFromHome.json().code, 'IP_NOT_ALLOWED');
      // Non-admin routes still work from anywhere; admin routes from the office.
      assert.equal(
        (await inject('GET', '/v1/members', { headers: owner.headers, remoteAddress: elsewhere })).statusCode,
        200,
      );
      const fromOffice = await inject('POST', '/v1/invitations', {
        headers: owner.headers,
        payload: invite,
        remoteAddress: office,
      });
      assert.equal(fromOffice.statusCode, 201);
    });

    test('a list that would lock out the caller is refused; invalid entries are named', async () => {
      const owner = await createUserSession(t.app);
      const lockout = await inject('PUT', '/v1/org/security', {
        headers: owner.headers,
        payload: { adminIpAllowlist: ['10.0.0.0/8'] },
        remoteAddress: '203.0.113.5',
      });
      assert.equal(lockout.statusCode, 409);
      const invalid = await inject('PUT', '/v1/org/security', {
        headers: owner.headers,
        payload: { adminIpAllowlist: ['203.0.113.0/24', 'example.com'] },
        remoteAddress: '203.0.113.5',
      });
      assert.equal(invalid.statusCode, 400);
      assert.match(invalid.json().detail, /example\.com/);
    });

    test('authorization: developers cannot read security settings', async () => {
      const owner = await createUserSession(t.app);
      const developer = await createMemberSession(t.app, owner.orgId, 'developer');
      assert.equal((await inject('GET', '/v1/org/security', { headers: developer.headers })).statusCode, 403);
      assert.equal((await inject('GET', '/v1/org/security', { headers: owner.headers })).statusCode, 200);
    });
  });

  describe('members', () => {
    test('lists members with roles; pages by cursor', async () => {
      const owner = await createUserSession(t.app);
      const developer = await createMemberSession(t.app, owner.orgId, 'developer');
      const page = await inject('GET', '/v1/members?limit=1', { headers: owner.headers });
      assert.equal(page.statusCode, 200);
      assert.equal(page.json().data.length, 1);
      const rest = await inject('GET', `/v1/members?limit=1&cursor=${page.json().nextCursor}`, {
        headers: owner.headers,
      });
      const roles = [...page.json().data, ...rest.json().data].map((m: { userId: string; role: string }) => [
        m.userId,
        m.role,
      ]);
      assert.deepEqual(
        roles.sort(),
        [
          [owner.userId, 'owner'],
          [developer.userId, 'developer'],
        ].sort(),
      );
    });

    test('an owner changes a role; validation refuses an unknown role', async () => {
      const owner = await createUserSession(t.app);
      const member = await createMemberSession(t.app, owner.orgId, 'viewer');
      const changed = await inject('PATCH', `/v1/members/${member.userId}`, {
        headers: owner.headers,
        payload: { role: 'admin' },
      });
      assert.equal(changed.statusCode, 200);
      assert.equal(changed.json().role, 'admin');
      const me = await inject('GET', '/v1/me', { headers: member.headers });
      assert.equal(me.json().role, 'admin', 'the new role applies at once');
      const invalid = await inject('PATCH', `/v1/members/${member.userId}`, {
        headers: owner.headers,
        payload: { role: 'superuser' },
      });
      assert.equal(invalid.statusCode, 400);
    });

    test('an admin cannot make an owner, nor demote one', async () => {
      const owner = await createUserSession(t.app);
      const admin = await createMemberSession(t.app, owner.orgId, 'admin');
      const member = await createMemberSession(t.app, owner.orgId, 'developer');
      const promote = await inject('PATCH', `/v1/members/${member.userId}`, {
        headers: admin.headers,
        payload: { role: 'owner' },
      });
      assert.equal(promote.statusCode, 403);
      const demote = await inject('PATCH', `/v1/members/${owner.userId}`, {
        headers: admin.headers,
        payload: { role: 'viewer' },
      });
      assert.equal(demote.statusCode, 403);
      const ok = await inject('PATCH', `/v1/members/${member.userId}`, {
        headers: admin.headers,
        payload: { role: 'viewer' },
      });
      assert.equal(ok.statusCode, 200);
    });

    test('the last owner can be neither demoted nor removed', async () => {
      const owner = await createUserSession(t.app);
      const demote = await inject('PATCH', `/v1/members/${owner.userId}`, {
        headers: owner.headers,
        payload: { role: 'admin' },
      });
      assert.equal(demote.statusCode, 409);
      const remove = await inject('DELETE', `/v1/members/${owner.userId}`, { headers: owner.headers });
      assert.equal(remove.statusCode, 409);
    });

    test('removing a member ends their access to the org at once', async () => {
      const owner = await createUserSession(t.app);
      const member = await createMemberSession(t.app, owner.orgId, 'developer');
      assert.equal((await inject('GET', '/v1/org', { headers: member.headers })).statusCode, 200);
      const removed = await inject('DELETE', `/v1/members/${member.userId}`, { headers: owner.headers });
      assert.equal(removed.statusCode, 204);
      const after = await inject('GET', '/v1/org', { headers: member.headers });
      assert.equal(after.statusCode, 403, 'signed in, but in no org');
    });

    test('authorization: a developer cannot change roles or remove members', async () => {
      const owner = await createUserSession(t.app);
      const developer = await createMemberSession(t.app, owner.orgId, 'developer');
      const viewer = await createMemberSession(t.app, owner.orgId, 'viewer');
      const change = await inject('PATCH', `/v1/members/${viewer.userId}`, {
        headers: developer.headers,
        payload: { role: 'developer' },
      });
      assert.equal(change.statusCode, 403);
      const remove = await inject('DELETE', `/v1/members/${viewer.userId}`, { headers: developer.headers });
      assert.equal(remove.statusCode, 403);
    });

    test('cross-org: another org’s member answers 404 to change and removal', async () => {
      const mine = await createUserSession(t.app);
      const theirs = await createUserSession(t.app);
      const theirMember = await createMemberSession(t.app, theirs.orgId, 'viewer');
      const change = await inject('PATCH', `/v1/members/${theirMember.userId}`, {
        headers: mine.headers,
        payload: { role: 'developer' },
      });
      assert.equal(change.statusCode, 404);
      const remove = await inject('DELETE', `/v1/members/${theirMember.userId}`, { headers: mine.headers });
      assert.equal(remove.statusCode, 404);
      const list = await inject('GET', '/v1/members', { headers: mine.headers });
      assert.ok(!list.json().data.some((m: { userId: string }) => m.userId === theirMember.userId));
    });
  });

  describe('invitations', () => {
    test('invite, list, and accept as an existing user: they join with the role', async () => {
      const owner = await createUserSession(t.app);
      const invitee = await createUserSession(t.app);
      const invited = await inject('POST', '/v1/invitations', {
        headers: owner.headers,
        payload: { email: invitee.email, role: 'billing' },
      });
      assert.equal(invited.statusCode, 201);
      const { token, invitation, acceptUrl, mailed } = invited.json();
      assert.match(token, /^keel_inv_/);
      assert.ok(acceptUrl.endsWith(token));
      assert.equal(mailed, false, 'the test config sends no mail');
      const listed = await inject('GET', '/v1/invitations', { headers: owner.headers });
      assert.deepEqual(
        listed.json().data.map((i: { id: string }) => i.id),
        [invitation.id],
      );
      assert.equal(JSON.stringify(listed.json()).includes(token), false, 'the token is shown once');
      const accepted = await inject('POST', '/v1/invitations/accept', {
        headers: invitee.headers,
        payload: { token },
      });
      assert.equal(accepted.statusCode, 200);
      assert.deepEqual(accepted.json(), { orgId: owner.orgId, role: 'billing' });
      const me = await inject('GET', '/v1/me', { headers: { ...invitee.headers, 'keel-org': owner.orgId } });
      assert.equal(me.json().role, 'billing');
      const again = await inject('POST', '/v1/invitations/accept', {
        headers: invitee.headers,
        payload: { token },
      });
      assert.equal(again.statusCode, 410, 'an invitation works once');
      assert.equal(
        (await inject('GET', '/v1/invitations', { headers: owner.headers })).json().data.length,
        0,
      );
    });

    test('a new user signs up with the invitation and joins that org, email verified', async () => {
      const owner = await createUserSession(t.app);
      const email = uniqueEmail();
      const { token } = (
        await inject('POST', '/v1/invitations', {
          headers: owner.headers,
          payload: { email, role: 'developer' },
        })
      ).json();
      const wrongEmail = await inject('POST', '/v1/auth/signup', {
        payload: { email: uniqueEmail(), password: FIXTURE_PASSWORD, invitationToken: token },
      });
      assert.equal(wrongEmail.statusCode, 403);
      const signedUp = await inject('POST', '/v1/auth/signup', {
        payload: { email, password: FIXTURE_PASSWORD, invitationToken: token },
      });
      assert.equal(signedUp.statusCode, 201);
      assert.equal(signedUp.json().orgId, owner.orgId);
      assert.notEqual(signedUp.json().user.emailVerifiedAt, null);
      const orgs = await inject('GET', '/v1/orgs', {
        headers: { authorization: `Bearer ${signedUp.json().token}` },
      });
      assert.equal(orgs.json().data.length, 1, 'no org of their own');
    });

    test('an invitation expires after 7 days, and a revoked one cannot be used', async () => {
      const owner = await createUserSession(t.app);
      const invitee = await createUserSession(t.app);
      const invite = async () =>
        (
          await inject('POST', '/v1/invitations', {
            headers: owner.headers,
            payload: { email: invitee.email, role: 'viewer' },
          })
        ).json();
      const expiring = await invite();
      clock.advance(INVITATION_TTL_MS + 1);
      const late = await inject('POST', '/v1/invitations/accept', {
        headers: invitee.headers,
        payload: { token: expiring.token },
      });
      assert.equal(late.statusCode, 410);
      assert.equal(late.json().code, 'INVITATION_EXPIRED');
      const revoked = await invite();
      assert.equal(
        (await inject('DELETE', `/v1/invitations/${revoked.invitation.id}`, { headers: owner.headers }))
          .statusCode,
        204,
      );
      const refused = await inject('POST', '/v1/invitations/accept', {
        headers: invitee.headers,
        payload: { token: revoked.token },
      });
      assert.equal(refused.statusCode, 410);
      const unknown = await inject('POST', '/v1/invitations/accept', {
        headers: invitee.headers,
        payload: { token: 'keel_inv_nope' },
      });
      assert.equal(unknown.statusCode, 404);
    });

    test('validation, and inviting only into roles you could hold', async () => {
      const owner = await createUserSession(t.app);
      const admin = await createMemberSession(t.app, owner.orgId, 'admin');
      const bad = await inject('POST', '/v1/invitations', {
        headers: owner.headers,
        payload: { email: 'nope', role: 'king' },
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().errors.length, 2);
      const ownerInvite = await inject('POST', '/v1/invitations', {
        headers: admin.headers,
        payload: { email: uniqueEmail(), role: 'owner' },
      });
      assert.equal(ownerInvite.statusCode, 403);
      const member = await inject('POST', '/v1/invitations', {
        headers: owner.headers,
        payload: { email: admin.email, role: 'viewer' },
      });
      assert.equal(member.statusCode, 409, 'already a member');
    });

    test('authorization and cross-org: a viewer cannot invite; another org’s invitation answers 404', async () => {
      const owner = await createUserSession(t.app);
      const viewer = await createMemberSession(t.app, owner.orgId, 'viewer');
      const denied = await inject('POST', '/v1/invitations', {
        headers: viewer.headers,
        payload: { email: uniqueEmail(), role: 'viewer' },
      });
      assert.equal(denied.statusCode, 403);
      const { invitation } = (
        await inject('POST', '/v1/invitations', {
          headers: owner.headers,
          payload: { email: uniqueEmail(), role: 'viewer' },
        })
      ).json();
      const stranger = await createUserSession(t.app);
      const crossOrg = await inject('DELETE', `/v1/invitations/${invitation.id}`, {
        headers: stranger.headers,
      });
      assert.equal(crossOrg.statusCode, 404);
      assert.equal(
        (await inject('GET', '/v1/invitations', { headers: stranger.headers })).json().data.length,
        0,
      );
    });
  });

  async function createAccessKey(orgId: string, scopes: string[]) {
    const created = await accessOf(t.app).apiKeys.create(
      { permissions: new Set(['members:write', 'members:read', 'org:read'] as const) },
      orgId,
      { name: 'admin automation', environment: 'live', scopes },
    );
    assert.ok(created.ok);
    return { headers: { authorization: `Bearer ${created.secret}` } };
  }
});
