/**
 * Users, sessions, orgs, members and invitations.
 *
 * For the flows built on top of this service (email verification and password reset, wallet
 * sign-in, SSO, two-factor), these are the calls to use; each is a method of `AccessService`:
 *
 * - `createUser({ email, password?, name?, emailVerified? })`: a user, no org. Emails are
 *   normalised (trimmed, lower-cased); a taken email is `{ ok: false, code: 'EMAIL_TAKEN' }`.
 * - `findUserByEmail(email)`, `findUserById(id)`.
 * - `createOrgForUser(userId, name)`: an org with the user as its owner (sign-up does this).
 * - `createSessionForUser(userId, { method, ip, userAgent })`: `{ session, token }`. The token is
 *   shown once; set it as the cookie with `sessionCookie(token, expiresAt, cookieSettings(config))`
 *   from index.ts.
 * - `markEmailVerified(userId)`.
 * - `setPassword(userId, password, { keepSessionId? })`: sets the hash and revokes every other
 *   session of the user; also clears the account's failed-login lockout.
 * - `linkIdentity(userId, provider, subject)` / `findUserByIdentity(provider, subject)`: SSO
 *   subjects (`oidc:<issuer>`) and wallet addresses (`siwe:eip155`); false when already linked.
 * - `requiresSecondFactor(user)`: true when `users.totp_enabled_at` is set. `setTotpEnabledAt`
 *   sets or clears it.
 * - Second factor at login: `logIn` answers `{ status: 'mfa_required', mfaToken }` for such a
 *   user; the two-factor flow calls `consumeMfaChallenge(mfaToken)` (single use, 5 minutes),
 *   checks the code, then `createSessionForUser(challenge.userId, …)`. Other first factors
 *   (wallet, SSO) call `createMfaChallenge(userId, { method, ip, userAgent })` for such a user.
 * - `addSessionGuard(guard)`: runs on every session-authenticated request after the org and
 *   role are known (e.g. an org that requires 2FA of owners and admins); a guard returns a
 *   KeelError to refuse the request.
 * - `revokeSessionsOfUser(userId, { exceptSessionId? })`, `clearLoginFailures(email)`.
 * - `addMember(orgId, userId, role)`: SSO's just-in-time provisioning; false when a member.
 */
import type { Clock } from '../../infra/clock.ts';
import type { Database, Tx } from '../../infra/db/database.ts';
import type { Permission } from '../../infra/http/auth.ts';
import type { ErrorCode, KeelError } from '../../infra/http/errors.ts';
import { type Page, pageOf } from '../../infra/http/pagination.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { Mailer } from '../../infra/mail/index.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { EventsService } from '../events/index.ts';
import { parseAllowlist } from './domain/cidr.ts';
import { holdsAll, type Role, rolePermissions, sessionPermissions } from './domain/permissions.ts';
import {
  generateOpaqueToken,
  generateSessionToken,
  hashToken,
  SESSION_TOKEN_PATTERN,
} from './domain/tokens.ts';
import { MEMBER_JOINED, MEMBER_REMOVED, MEMBER_ROLE_CHANGED } from './events.ts';
import type { LoginThrottle } from './login-throttle.ts';
import { hashPassword, needsRehash, verifyDecoy, verifyPassword } from './passwords.ts';
import * as store from './store.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A session unused this long expires; each use (noted at most every SESSION_TOUCH_INTERVAL_MS) extends it. */
export const SESSION_IDLE_TIMEOUT_MS = 14 * DAY_MS;
/** No session lives longer than this, however often it is used. */
export const SESSION_MAX_AGE_MS = 90 * DAY_MS;
export const SESSION_TOUCH_INTERVAL_MS = 5 * 60 * 1000;
export const INVITATION_TTL_MS = 7 * DAY_MS;
export const MFA_CHALLENGE_TTL_MS = 5 * 60 * 1000;
export const MAX_NAME_LENGTH = 200;

export type Result<T> =
  | ({ ok: true } & T)
  | { ok: false; code: ErrorCode; detail: string; retryAfterMs?: number };

const failure = (code: ErrorCode, detail: string, retryAfterMs?: number) =>
  ({ ok: false, code, detail, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }) as const;

export interface User {
  readonly id: string;
  /** Null for a user who signed up with a wallet. */
  readonly email: string | null;
  readonly emailVerifiedAt: Date | null;
  readonly name: string | null;
  readonly hasPassword: boolean;
  readonly totpEnabledAt: Date | null;
  readonly createdAt: Date;
}

export interface Session {
  readonly id: string;
  readonly userId: string;
  readonly method: string;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly expiresAt: Date;
}

export interface Org {
  readonly id: string;
  readonly name: string;
  readonly rateLimitPerMinute: number | null;
  readonly adminIpAllowlist: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface Member {
  readonly userId: string;
  readonly email: string | null;
  readonly name: string | null;
  readonly role: Role;
  readonly twoFactorEnabled: boolean;
  readonly joinedAt: Date;
}

export interface Invitation {
  readonly id: string;
  readonly orgId: string;
  readonly email: string;
  readonly role: Role;
  readonly invitedBy: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

/** Who asks: their permissions in the org, and their user id when a person asks. */
export interface Actor {
  readonly userId?: string | undefined;
  readonly permissions: ReadonlySet<Permission>;
}

export interface RequestOrigin {
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
}

/** What a session-authenticated request acts as. */
export interface SessionIdentity {
  readonly sessionId: string;
  readonly userId: string;
  readonly email: string | null;
  readonly totpEnabledAt: Date | null;
  /** Absent when the user belongs to no org. */
  readonly org?: {
    readonly id: string;
    readonly role: Role;
    readonly rateLimitPerMinute: number | null;
    readonly adminIpAllowlist: readonly string[];
  };
  readonly permissions: ReadonlySet<Permission>;
}

export type SessionGuard = (identity: SessionIdentity) => Promise<KeelError | undefined>;

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

const toUser = (row: store.UserRow): User => ({
  id: row.id,
  email: row.email,
  emailVerifiedAt: row.email_verified_at,
  name: row.name,
  hasPassword: row.password_hash !== null,
  totpEnabledAt: row.totp_enabled_at,
  createdAt: row.created_at,
});

const toSession = (row: store.SessionRow): Session => ({
  id: row.id,
  userId: row.user_id,
  method: row.method,
  ip: row.ip,
  userAgent: row.user_agent,
  createdAt: row.created_at,
  lastSeenAt: row.last_seen_at,
  expiresAt: row.expires_at,
});

export const toOrg = (row: store.OrgRow): Org => ({
  id: row.id,
  name: row.name,
  rateLimitPerMinute: row.rate_limit_per_minute,
  adminIpAllowlist: row.admin_ip_allowlist,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toMember = (row: store.MemberRow): Member => ({
  userId: row.user_id,
  email: row.email,
  name: row.name,
  role: row.role,
  twoFactorEnabled: row.totp_enabled_at !== null,
  joinedAt: row.created_at,
});

const toInvitation = (row: store.InvitationRow): Invitation => ({
  id: row.id,
  orgId: row.org_id,
  email: row.email,
  role: row.role,
  invitedBy: row.invited_by,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
});

/** True when signing in as this user needs a TOTP code (or a recovery code) after the password. */
export function requiresSecondFactor(user: Pick<User, 'totpEnabledAt'>): boolean {
  return user.totpEnabledAt !== null;
}

export interface AccessServiceDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly log: Logger;
  readonly events: EventsService;
  readonly throttle: LoginThrottle;
  /** Absent: invitations are not mailed; the inviter passes the link on. */
  readonly mailer?: Mailer | undefined;
  /** Base of the links in mail: the dashboard's invitation page. */
  readonly publicUrl: string;
  /** Called when an org's limits or allowlist change, so cached API keys see it. */
  readonly onOrgChanged?: (orgId: string) => Promise<void>;
  /**
   * Records a security event of a user (sign-in, failed sign-in) in the audit log of every org
   * the user belongs to. Requests with an org are audited by the audit hook already.
   */
  readonly onSecurityEvent?: (event: SecurityEvent) => Promise<void>;
}

export interface SecurityEvent {
  readonly userId: string;
  readonly action: 'user.login' | 'user.login_failed';
  readonly outcome: 'success' | 'failure';
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
}

export type AccessService = ReturnType<typeof createAccessService>;

export function createAccessService(deps: AccessServiceDeps) {
  const { database, clock, newId, log, events, throttle } = deps;
  const db = database.db;
  const guards: SessionGuard[] = [];
  // The audit trail must never turn a sign-in into an error: a failed write is logged.
  const securityEvent = async (event: SecurityEvent) => {
    await deps.onSecurityEvent?.(event).catch((error: unknown) => {
      log.error({ err: error, action: event.action }, 'could not record a security event');
    });
  };

  const sessionExpiry = (createdAt: Date, now: Date) =>
    new Date(Math.min(now.getTime() + SESSION_IDLE_TIMEOUT_MS, createdAt.getTime() + SESSION_MAX_AGE_MS));

  async function insertUser(
    executor: Tx,
    input: { email: string; password?: string; name?: string; emailVerified?: boolean },
  ): Promise<Result<{ user: User }>> {
    const now = clock.now();
    const row = await store.insertUser(executor, {
      id: newId('usr'),
      email: normalizeEmail(input.email),
      email_verified_at: input.emailVerified ? now : null,
      name: input.name ?? null,
      password_hash: input.password === undefined ? null : await hashPassword(input.password),
      totp_enabled_at: null,
      created_at: now,
      updated_at: now,
    });
    if (!row) return failure('EMAIL_TAKEN', 'An account with this email exists; sign in instead');
    return { ok: true, user: toUser(row) };
  }

  async function insertOrgWithOwner(executor: Tx, userId: string, name: string): Promise<Org> {
    const now = clock.now();
    const org = await store.insertOrg(executor, {
      id: newId('org'),
      name,
      rate_limit_per_minute: null,
      admin_ip_allowlist: [],
      created_at: now,
      updated_at: now,
    });
    await store.insertMembership(executor, {
      org_id: org.id,
      user_id: userId,
      role: 'owner',
      created_at: now,
      updated_at: now,
    });
    await events.emit(executor, org.id, [{ type: MEMBER_JOINED.type, payload: { userId, role: 'owner' } }]);
    return toOrg(org);
  }

  async function insertSession(
    executor: Tx | typeof db,
    userId: string,
    options: { method: string } & RequestOrigin,
  ): Promise<{ session: Session; token: string }> {
    const now = clock.now();
    const token = generateSessionToken();
    const row = await store.insertSession(executor, {
      id: newId('ses'),
      user_id: userId,
      token_hash: hashToken(token),
      method: options.method,
      ip: options.ip ?? null,
      user_agent: options.userAgent?.slice(0, 512) ?? null,
      created_at: now,
      last_seen_at: now,
      expires_at: sessionExpiry(now, now),
      revoked_at: null,
    });
    return { session: toSession(row), token };
  }

  /**
   * A sign-in that passed its first factor (password, wallet, SSO) and waits for the second: the
   * token is shown once and is good for MFA_CHALLENGE_TTL_MS.
   */
  async function createMfaChallenge(
    userId: string,
    options: { method: string } & RequestOrigin,
  ): Promise<{ mfaToken: string; expiresAt: Date }> {
    const mfaToken = generateOpaqueToken('keel_mfa');
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + MFA_CHALLENGE_TTL_MS);
    await store.insertMfaChallenge(db, {
      token_hash: hashToken(mfaToken),
      user_id: userId,
      method: options.method,
      ip: options.ip ?? null,
      user_agent: options.userAgent?.slice(0, 512) ?? null,
      created_at: now,
      expires_at: expiresAt,
    });
    return { mfaToken, expiresAt };
  }

  /** Sets the password and signs the user out everywhere else (but `keepSessionId`). */
  async function setPassword(userId: string, password: string, options: { keepSessionId?: string } = {}) {
    const now = clock.now();
    const passwordHash = await hashPassword(password);
    const user = await database.transaction(async (tx) => {
      const updated = await store.updateUser(tx, userId, { password_hash: passwordHash }, now);
      await store.revokeSessionsOfUser(tx, userId, now, options.keepSessionId);
      return updated;
    });
    if (user?.email) await throttle.clear(user.email);
  }

  /** Takes the invitation behind `token` for `user`, inside the caller's transaction. */
  async function acceptInvitationIn(
    tx: Tx,
    user: { id: string; email: string | null; emailVerifiedAt: Date | null },
    token: string,
  ): Promise<Result<{ orgId: string; role: Role }>> {
    const now = clock.now();
    const invitation = await store.findInvitationByTokenForUpdate(tx, hashToken(token));
    if (!invitation) return failure('NOT_FOUND', 'No invitation has this token');
    if (invitation.accepted_at || invitation.revoked_at || invitation.expires_at <= now) {
      return failure('INVITATION_EXPIRED', 'This invitation expired, was revoked or was already used');
    }
    if (invitation.email !== user.email) {
      return failure('FORBIDDEN', 'This invitation was sent to another email address');
    }
    const joined = await store.insertMembership(tx, {
      org_id: invitation.org_id,
      user_id: user.id,
      role: invitation.role,
      created_at: now,
      updated_at: now,
    });
    await store.markInvitationAccepted(tx, invitation.org_id, invitation.id, user.id, now);
    // The token arrived by mail at this address: that proves the address, as verification would.
    if (!user.emailVerifiedAt) await store.updateUser(tx, user.id, { email_verified_at: now }, now);
    if (joined) {
      await events.emit(tx, invitation.org_id, [
        { type: MEMBER_JOINED.type, payload: { userId: user.id, role: invitation.role } },
      ]);
    }
    return { ok: true, orgId: invitation.org_id, role: invitation.role };
  }

  return {
    // ---- users ----------------------------------------------------------------------------

    async createUser(input: {
      email: string;
      password?: string;
      name?: string;
      emailVerified?: boolean;
    }): Promise<Result<{ user: User }>> {
      return database.transaction((tx) => insertUser(tx, input));
    },

    async findUserByEmail(email: string): Promise<User | undefined> {
      const row = await store.findUserByEmail(db, normalizeEmail(email));
      return row && toUser(row);
    },

    async findUserById(id: string): Promise<User | undefined> {
      const row = await store.findUserById(db, id);
      return row && toUser(row);
    },

    async markEmailVerified(userId: string): Promise<void> {
      const now = clock.now();
      await store.updateUser(db, userId, { email_verified_at: now }, now);
    },

    async setTotpEnabledAt(userId: string, at: Date | null): Promise<void> {
      await store.updateUser(db, userId, { totp_enabled_at: at }, clock.now());
    },

    setPassword,

    async changePassword(
      userId: string,
      currentPassword: string,
      newPassword: string,
      keepSessionId: string,
    ): Promise<Result<object>> {
      const user = await store.findUserById(db, userId);
      if (!user) return failure('NOT_FOUND', 'No such user');
      const valid = user.password_hash
        ? await verifyPassword(user.password_hash, currentPassword)
        : await verifyDecoy(currentPassword);
      if (!valid) return failure('INVALID_CREDENTIALS', 'The current password is wrong');
      await setPassword(userId, newPassword, { keepSessionId });
      return { ok: true };
    },

    async linkIdentity(userId: string, provider: string, subject: string): Promise<boolean> {
      return store.insertIdentity(db, { provider, subject, user_id: userId, created_at: clock.now() });
    },

    async findUserByIdentity(provider: string, subject: string): Promise<User | undefined> {
      const row = await store.findUserByIdentity(db, provider, subject);
      return row && toUser(row);
    },

    requiresSecondFactor,

    clearLoginFailures: (email: string) => throttle.clear(normalizeEmail(email)),

    // ---- sign-up and sign-in ---------------------------------------------------------------

    /**
     * A new user with a session. With an invitation token the user joins that org (the email
     * must be the invited one); otherwise they get an org of their own, as its owner.
     */
    async signUp(
      input: { email: string; password: string; name?: string; orgName?: string; invitationToken?: string },
      origin: RequestOrigin,
    ): Promise<Result<{ user: User; orgId: string; role: Role; session: Session; token: string }>> {
      return database
        .transaction(async (tx) => {
          const created = await insertUser(tx, input);
          if (!created.ok) return created;
          let orgId: string;
          let role: Role = 'owner';
          if (input.invitationToken) {
            const accepted = await acceptInvitationIn(tx, created.user, input.invitationToken);
            if (!accepted.ok) throw new Rollback(accepted);
            orgId = accepted.orgId;
            role = accepted.role;
          } else {
            const fallbackName = `${input.name ?? input.email.split('@')[0]}'s org`;
            orgId = (await insertOrgWithOwner(tx, created.user.id, input.orgName ?? fallbackName)).id;
          }
          const { session, token } = await insertSession(tx, created.user.id, {
            method: 'password',
            ...origin,
          });
          const user = (await store.findUserById(tx, created.user.id))!;
          return { ok: true as const, user: toUser(user), orgId, role, session, token };
        })
        .catch((error) => {
          if (error instanceof Rollback) return error.result;
          throw error;
        });
    },

    /**
     * Email and password. Failures back off and then lock out per account and per address; an
     * unknown email costs the same time as a wrong password and answers the same.
     */
    async logIn(
      input: { email: string; password: string },
      origin: RequestOrigin & { ip: string },
    ): Promise<
      Result<
        | { status: 'ok'; user: User; session: Session; token: string }
        | { status: 'mfa_required'; mfaToken: string; expiresAt: Date }
      >
    > {
      const email = normalizeEmail(input.email);
      const verdict = await throttle.check(email, origin.ip);
      if (!verdict.allowed) {
        return failure(
          'LOGIN_THROTTLED',
          verdict.reason === 'locked'
            ? 'Too many failed attempts: sign-in is locked for a while'
            : 'Too many failed attempts: wait before trying again',
          verdict.retryAfterMs,
        );
      }
      const row = await store.findUserByEmail(db, email);
      const valid = row?.password_hash
        ? await verifyPassword(row.password_hash, input.password)
        : await verifyDecoy(input.password);
      if (!row || !valid) {
        await throttle.recordFailure(email, origin.ip);
        if (row)
          await securityEvent({ userId: row.id, action: 'user.login_failed', outcome: 'failure', ...origin });
        return failure('INVALID_CREDENTIALS', 'The email or the password is wrong');
      }
      await throttle.clear(email);
      if (row.password_hash && needsRehash(row.password_hash)) {
        const upgraded = await hashPassword(input.password);
        await store.updateUser(db, row.id, { password_hash: upgraded }, clock.now());
      }
      const user = toUser(row);
      if (requiresSecondFactor(user)) {
        const { mfaToken, expiresAt } = await createMfaChallenge(user.id, { method: 'password', ...origin });
        return { ok: true, status: 'mfa_required', mfaToken, expiresAt };
      }
      const { session, token } = await insertSession(db, user.id, { method: 'password', ...origin });
      await securityEvent({ userId: user.id, action: 'user.login', outcome: 'success', ...origin });
      return { ok: true, status: 'ok', user, session, token };
    },

    /** The login waiting for its second factor; undefined when unknown, used or expired. */
    async consumeMfaChallenge(
      mfaToken: string,
    ): Promise<{ userId: string; method: string; ip: string | null; userAgent: string | null } | undefined> {
      const row = await store.takeMfaChallenge(db, hashToken(mfaToken), clock.now());
      return row && { userId: row.user_id, method: row.method, ip: row.ip, userAgent: row.user_agent };
    },

    createMfaChallenge,

    createSessionForUser(userId: string, options: { method: string } & RequestOrigin) {
      return insertSession(db, userId, options);
    },

    addSessionGuard(guard: SessionGuard): void {
      guards.push(guard);
    },

    /**
     * Resolves a session token to who it acts as, in `orgId` when the request names one (else
     * the user's oldest org). An org the user is not a member of answers NOT_FOUND, like any
     * other org's resource.
     */
    async authenticateSession(
      token: string,
      orgId: string | undefined,
    ): Promise<Result<{ identity: SessionIdentity }>> {
      if (!SESSION_TOKEN_PATTERN.test(token))
        return failure('UNAUTHENTICATED', 'The session token is not valid');
      const now = clock.now();
      const row = await store.findLiveSession(db, hashToken(token), now);
      if (!row) return failure('UNAUTHENTICATED', 'The session expired or was revoked; sign in again');
      if (now.getTime() - row.last_seen_at.getTime() > SESSION_TOUCH_INTERVAL_MS) {
        await store.touchSession(db, row.session_id, now, sessionExpiry(row.created_at, now));
      }
      const membership = await store.findMembershipWithOrg(db, row.user_id, orgId);
      if (orgId !== undefined && !membership) return failure('NOT_FOUND', `No org ${orgId}`);
      const identity: SessionIdentity = {
        sessionId: row.session_id,
        userId: row.user_id,
        email: row.email,
        totpEnabledAt: row.totp_enabled_at,
        ...(membership
          ? {
              org: {
                id: membership.org_id,
                role: membership.role,
                rateLimitPerMinute: membership.rate_limit_per_minute,
                adminIpAllowlist: membership.admin_ip_allowlist,
              },
            }
          : {}),
        permissions: sessionPermissions(membership?.role),
      };
      for (const guard of guards) {
        const refusal = await guard(identity);
        if (refusal) return failure(refusal.code, refusal.message);
      }
      return { ok: true, identity };
    },

    async listSessions(userId: string, page: store.PageQuery): Promise<Page<Session>> {
      const rows = await store.listLiveSessions(db, userId, clock.now(), page);
      return pageOf(rows, page.limit, (row) => row.id, toSession);
    },

    /** False when the user has no such live session (another user's session included). */
    revokeSession(userId: string, sessionId: string): Promise<boolean> {
      return store.revokeSession(db, userId, sessionId, clock.now());
    },

    revokeSessionsOfUser(userId: string, options: { exceptSessionId?: string } = {}): Promise<number> {
      return store.revokeSessionsOfUser(db, userId, clock.now(), options.exceptSessionId);
    },

    // ---- orgs -------------------------------------------------------------------------------

    async createOrgForUser(userId: string, name: string): Promise<Org> {
      return database.transaction((tx) => insertOrgWithOwner(tx, userId, name));
    },

    async listOrgsOfUser(userId: string, page: store.PageQuery): Promise<Page<Org & { role: Role }>> {
      const rows = await store.listOrgsOfUser(db, userId, page);
      return pageOf(
        rows,
        page.limit,
        (row) => row.id,
        (row) => ({ ...toOrg(row), role: row.role }),
      );
    },

    async getOrg(orgId: string): Promise<Org | undefined> {
      const row = await store.findOrg(db, orgId);
      return row && toOrg(row);
    },

    async updateOrg(
      orgId: string,
      changes: { name?: string; rateLimitPerMinute?: number | null },
    ): Promise<Org | undefined> {
      const row = await store.updateOrg(
        db,
        orgId,
        {
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.rateLimitPerMinute === undefined
            ? {}
            : { rate_limit_per_minute: changes.rateLimitPerMinute }),
        },
        clock.now(),
      );
      if (row) await deps.onOrgChanged?.(orgId);
      return row && toOrg(row);
    },

    async setAdminIpAllowlist(orgId: string, entries: readonly string[]): Promise<Result<{ org: Org }>> {
      const parsed = parseAllowlist(entries);
      if (!parsed.ok)
        return failure('VALIDATION_FAILED', `Not an IP address or CIDR range: ${parsed.invalid.join(', ')}`);
      const row = await store.updateOrg(
        db,
        orgId,
        { admin_ip_allowlist: [...parsed.allowlist.entries] },
        clock.now(),
      );
      if (!row) return failure('NOT_FOUND', `No org ${orgId}`);
      await deps.onOrgChanged?.(orgId);
      return { ok: true, org: toOrg(row) };
    },

    // ---- members ----------------------------------------------------------------------------

    async listMembers(orgId: string, page: store.PageQuery): Promise<Page<Member>> {
      const rows = await store.listMembers(db, orgId, page);
      return pageOf(rows, page.limit, (row) => row.user_id, toMember);
    },

    async getMember(orgId: string, userId: string): Promise<Member | undefined> {
      const row = await store.findMember(db, orgId, userId);
      return row && toMember(row);
    },

    /** Adds the user to the org (SSO's just-in-time provisioning); false when already a member. */
    async addMember(orgId: string, userId: string, role: Role): Promise<boolean> {
      return database.transaction(async (tx) => {
        const now = clock.now();
        const joined = await store.insertMembership(tx, {
          org_id: orgId,
          user_id: userId,
          role,
          created_at: now,
          updated_at: now,
        });
        if (joined) await events.emit(tx, orgId, [{ type: MEMBER_JOINED.type, payload: { userId, role } }]);
        return joined;
      });
    },

    async getMembership(orgId: string, userId: string): Promise<{ role: Role } | undefined> {
      const row = await store.findMembership(db, orgId, userId);
      return row && { role: row.role };
    },

    /**
     * Changes a member's role. The actor must hold every permission of both the old and the new
     * role, and an org always keeps an owner.
     */
    async changeRole(
      actor: Actor,
      orgId: string,
      userId: string,
      role: Role,
    ): Promise<Result<{ role: Role }>> {
      return database.transaction(async (tx) => {
        const owners = await store.lockOwners(tx, orgId);
        const membership = await store.findMembership(tx, orgId, userId);
        if (!membership) return failure('NOT_FOUND', `No member ${userId}`);
        if (
          !holdsAll(actor.permissions, rolePermissions(membership.role)) ||
          !holdsAll(actor.permissions, rolePermissions(role))
        ) {
          return failure(
            'FORBIDDEN',
            `Changing a ${membership.role} into a ${role} needs every permission of both roles`,
          );
        }
        if (membership.role === 'owner' && role !== 'owner' && owners.length <= 1) {
          return failure('CONFLICT', 'An org keeps at least one owner: make someone else owner first');
        }
        if (membership.role === role) return { ok: true as const, role };
        await store.updateMembershipRole(tx, orgId, userId, role, clock.now());
        await events.emit(tx, orgId, [
          { type: MEMBER_ROLE_CHANGED.type, payload: { userId, from: membership.role, to: role } },
        ]);
        return { ok: true as const, role };
      });
    },

    async removeMember(actor: Actor, orgId: string, userId: string): Promise<Result<object>> {
      return database.transaction(async (tx) => {
        const owners = await store.lockOwners(tx, orgId);
        const membership = await store.findMembership(tx, orgId, userId);
        if (!membership) return failure('NOT_FOUND', `No member ${userId}`);
        if (!holdsAll(actor.permissions, rolePermissions(membership.role))) {
          return failure('FORBIDDEN', `Removing a ${membership.role} needs every permission of that role`);
        }
        if (membership.role === 'owner' && owners.length <= 1) {
          return failure('CONFLICT', 'An org keeps at least one owner');
        }
        await store.deleteMembership(tx, orgId, userId);
        await events.emit(tx, orgId, [
          { type: MEMBER_REMOVED.type, payload: { userId, role: membership.role } },
        ]);
        return { ok: true as const };
      });
    },

    // ---- invitations ------------------------------------------------------------------------

    /**
     * Invites an email into the org with a role the actor could hold. The token is returned once
     * (for the inviter to pass on) and mailed when a mailer is configured.
     */
    async invite(
      actor: Actor,
      orgId: string,
      input: { email: string; role: Role },
    ): Promise<Result<{ invitation: Invitation; token: string; acceptUrl: string; mailed: boolean }>> {
      if (!holdsAll(actor.permissions, rolePermissions(input.role))) {
        return failure('FORBIDDEN', `Inviting a ${input.role} needs every permission of that role`);
      }
      const email = normalizeEmail(input.email);
      const existing = await store.findUserByEmail(db, email);
      if (existing && (await store.findMembership(db, orgId, existing.id))) {
        return failure('CONFLICT', `${email} is already a member`);
      }
      const now = clock.now();
      const token = generateOpaqueToken('keel_inv');
      const row = await store.insertInvitation(db, {
        org_id: orgId,
        id: newId('inv'),
        email,
        role: input.role,
        token_hash: hashToken(token),
        invited_by: actor.userId ?? null,
        created_at: now,
        expires_at: new Date(now.getTime() + INVITATION_TTL_MS),
        accepted_at: null,
        accepted_by: null,
        revoked_at: null,
      });
      const acceptUrl = `${deps.publicUrl}/invitations/accept?token=${token}`;
      let mailed = false;
      if (deps.mailer) {
        const org = await store.findOrg(db, orgId);
        try {
          await deps.mailer.send({
            to: email,
            subject: `You are invited to ${org?.name ?? 'an org'} on Keel`,
            text:
              `You have been invited to join ${org?.name ?? 'an org'} on Keel as ${input.role}.\n\n` +
              `Accept the invitation: ${acceptUrl}\n\nThe link works once and expires on ${row.expires_at.toISOString()}.`,
          });
          mailed = deps.mailer.kind === 'smtp';
        } catch (error) {
          log.warn(
            { err: error, orgId, invitationId: row.id },
            'invitation mail failed; the inviter has the link',
          );
        }
      }
      return { ok: true, invitation: toInvitation(row), token, acceptUrl, mailed };
    },

    async listInvitations(orgId: string, page: store.PageQuery): Promise<Page<Invitation>> {
      const rows = await store.listPendingInvitations(db, orgId, clock.now(), page);
      return pageOf(rows, page.limit, (row) => row.id, toInvitation);
    },

    revokeInvitation(orgId: string, invitationId: string): Promise<boolean> {
      return store.revokeInvitation(db, orgId, invitationId, clock.now());
    },

    async acceptInvitation(userId: string, token: string): Promise<Result<{ orgId: string; role: Role }>> {
      return database
        .transaction(async (tx) => {
          const user = await store.findUserById(tx, userId);
          if (!user) return failure('NOT_FOUND', 'No such user');
          const accepted = await acceptInvitationIn(
            tx,
            { id: user.id, email: user.email, emailVerifiedAt: user.email_verified_at },
            token,
          );
          if (!accepted.ok) throw new Rollback(accepted);
          return accepted;
        })
        .catch((error) => {
          if (error instanceof Rollback) return error.result;
          throw error;
        });
    },
  };
}

/** Carries an expected failure out of a transaction that must not commit. */
class Rollback extends Error {
  constructor(readonly result: { ok: false; code: ErrorCode; detail: string }) {
    super(result.detail);
  }
}
