import type { Clock } from '../../../infra/clock.ts';
import type { Database } from '../../../infra/db/database.ts';
import type { ErrorCode } from '../../../infra/http/errors.ts';
import type { SecretBox } from '../../../infra/keystore/secret-box.ts';
import type { KeyValueStore } from '../../../infra/redis/kv.ts';
import type { Role } from '../domain/permissions.ts';
import type { AccessService, RequestOrigin, Session, User } from '../service.ts';
import { classifySecondFactor, hashRecoveryCode, newRecoveryCodes } from './domain/recovery-codes.ts';
import { checkTotp, newTotpSecret, totpUri } from './domain/totp.ts';
import * as store from './store.ts';

/** Wrong codes a user may enter before second-factor checks pause (counted across sign-ins). */
export const TWO_FACTOR_MAX_FAILURES = 10;
/** How long wrong codes are remembered, and so how long the pause lasts at most. */
export const TWO_FACTOR_FAILURE_WINDOW_MS = 15 * 60 * 1000;
/** The roles an org's 2FA policy applies to. */
export const TWO_FACTOR_POLICY_ROLES: readonly Role[] = ['owner', 'admin'];

export type Result<T> =
  | ({ ok: true } & T)
  | {
      ok: false;
      code: ErrorCode;
      detail: string;
      retryAfterMs?: number;
      mfaToken?: string;
      expiresAt?: Date;
    };

const failure = (code: ErrorCode, detail: string) => ({ ok: false, code, detail }) as const;

export interface TwoFactorStatus {
  readonly enabled: boolean;
  readonly enabledAt: Date | null;
  /** An enrolment was started and awaits its first code. */
  readonly pending: boolean;
  readonly recoveryCodesRemaining: number;
}

export interface TwoFactorPolicy {
  readonly orgId: string;
  readonly requireForAdmins: boolean;
  readonly updatedAt: Date | null;
}

export interface TwoFactorDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly kv: KeyValueStore;
  readonly secretBox: SecretBox;
  /** Keeps this deployment's keys apart from another's in a shared Redis. */
  readonly namespace: string;
  readonly access: Pick<
    AccessService,
    | 'findUserById'
    | 'setTotpEnabledAt'
    | 'consumeMfaChallenge'
    | 'createMfaChallenge'
    | 'createSessionForUser'
    | 'getMembership'
  >;
}

export type TwoFactorService = ReturnType<typeof createTwoFactorService>;

/**
 * TOTP second factor (RFC 6238) with recovery codes, the second step of sign-in, and the org
 * policy that owners and admins must use it.
 *
 * Enrolment is two steps so a secret is only trusted once an app has shown it can produce codes:
 * `beginEnrolment` returns the secret and its otpauth:// URI once; `confirmEnrolment` with a
 * code from the app turns 2FA on and returns the ten recovery codes, once.
 */
export function createTwoFactorService(deps: TwoFactorDeps) {
  const { database, clock, kv, secretBox, access } = deps;
  const db = database.db;
  const sealContext = (userId: string) => `totp-secret:${userId}`;
  const failuresKey = (userId: string) => `2fa:${deps.namespace}:failures:${userId}`;

  async function throttled(userId: string): Promise<boolean> {
    return Number((await kv.get(failuresKey(userId))) ?? 0) >= TWO_FACTOR_MAX_FAILURES;
  }
  async function recordFailure(userId: string): Promise<void> {
    await kv.increment(failuresKey(userId), 1, TWO_FACTOR_FAILURE_WINDOW_MS);
  }

  const throttledFailure = () =>
    ({
      ok: false,
      code: 'TWO_FACTOR_THROTTLED',
      detail: `Too many wrong codes: try again in up to ${TWO_FACTOR_FAILURE_WINDOW_MS / 60_000} minutes`,
      retryAfterMs: TWO_FACTOR_FAILURE_WINDOW_MS,
    }) as const;

  /**
   * Checks a TOTP code or a recovery code of a user with 2FA on, and uses it up: a TOTP code's
   * time step is recorded (no replay), a recovery code is marked used. Wrong codes count towards
   * the user's pause.
   */
  async function useSecondFactor(
    userId: string,
    code: string,
  ): Promise<Result<{ via: 'totp' | 'recovery' }>> {
    if (await throttled(userId)) return throttledFailure();
    const kind = classifySecondFactor(code);
    const now = clock.now();
    let accepted = false;
    if (kind === 'totp') {
      const credential = await store.findTotpCredential(db, userId);
      if (!credential?.confirmed_at)
        return failure('TWO_FACTOR_NOT_ENABLED', 'Two-factor authentication is off');
      const check = await checkTotp({
        secret: secretBox.open(credential.secret_sealed, sealContext(userId)),
        code: code.trim(),
        now,
        lastUsedStep: credential.last_used_step,
      });
      accepted = check.valid && (await store.useTotpStep(db, userId, check.step));
    } else if (kind === 'recovery') {
      accepted = await store.useRecoveryCode(db, userId, hashRecoveryCode(code), now);
    }
    if (!accepted) {
      await recordFailure(userId);
      return failure('TWO_FACTOR_CODE_INVALID', 'The code is wrong, expired or was already used');
    }
    await kv.delete(failuresKey(userId));
    return { ok: true, via: kind === 'totp' ? 'totp' : 'recovery' };
  }

  async function issueRecoveryCodes(userId: string): Promise<string[]> {
    const codes = newRecoveryCodes();
    await store.replaceRecoveryCodes(db, userId, codes.map(hashRecoveryCode), clock.now());
    return codes;
  }

  async function policyOf(orgId: string): Promise<TwoFactorPolicy> {
    const row = await store.findTwoFactorPolicy(db, orgId);
    return { orgId, requireForAdmins: row?.require_for_admins ?? false, updatedAt: row?.updated_at ?? null };
  }

  return {
    async status(userId: string): Promise<TwoFactorStatus> {
      const [user, credential, remaining] = await Promise.all([
        access.findUserById(userId),
        store.findTotpCredential(db, userId),
        store.countUnusedRecoveryCodes(db, userId),
      ]);
      const enabledAt = user?.totpEnabledAt ?? null;
      return {
        enabled: enabledAt !== null,
        enabledAt,
        pending: credential !== undefined && credential.confirmed_at === null,
        recoveryCodesRemaining: enabledAt ? remaining : 0,
      };
    },

    /** A new secret for the user's authenticator app, replacing any unconfirmed one. */
    async beginEnrolment(userId: string): Promise<Result<{ secret: string; otpauthUri: string }>> {
      const user = await access.findUserById(userId);
      if (!user) return failure('NOT_FOUND', 'No such user');
      if (user.totpEnabledAt) {
        return failure(
          'TWO_FACTOR_ALREADY_ENABLED',
          'Disable two-factor authentication before enrolling again',
        );
      }
      const secret = newTotpSecret();
      await store.upsertPendingTotp(db, userId, secretBox.seal(secret, sealContext(userId)), clock.now());
      return { ok: true, secret, otpauthUri: totpUri(secret, user.email ?? user.id) };
    },

    /** The first code from the app proves it holds the secret: 2FA turns on. */
    async confirmEnrolment(
      userId: string,
      code: string,
    ): Promise<Result<{ enabledAt: Date; recoveryCodes: string[] }>> {
      if (await throttled(userId)) return throttledFailure();
      const credential = await store.findTotpCredential(db, userId);
      if (!credential) return failure('TWO_FACTOR_ENROLMENT_MISSING', 'Start an enrolment first');
      if (credential.confirmed_at)
        return failure('TWO_FACTOR_ALREADY_ENABLED', 'Two-factor authentication is on');
      const now = clock.now();
      const check = await checkTotp({
        secret: secretBox.open(credential.secret_sealed, sealContext(userId)),
        code: code.trim(),
        now,
        lastUsedStep: credential.last_used_step,
      });
      if (!check.valid || !(await store.useTotpStep(db, userId, check.step, now))) {
        await recordFailure(userId);
        return failure(
          'TWO_FACTOR_CODE_INVALID',
          'The code does not match: check the app’s clock and try again',
        );
      }
      await kv.delete(failuresKey(userId));
      const recoveryCodes = await issueRecoveryCodes(userId);
      await access.setTotpEnabledAt(userId, now);
      return { ok: true, enabledAt: now, recoveryCodes };
    },

    /** Turns 2FA off; a current code (or a recovery code) proves the caller holds the factor. */
    async disable(userId: string, code: string): Promise<Result<object>> {
      const user = await access.findUserById(userId);
      if (!user?.totpEnabledAt) return failure('TWO_FACTOR_NOT_ENABLED', 'Two-factor authentication is off');
      const used = await useSecondFactor(userId, code);
      if (!used.ok) return used;
      // Off first: a crash in between leaves 2FA off with a stale secret, never on without one.
      await access.setTotpEnabledAt(userId, null);
      await database.transaction((tx) => store.deleteTotp(tx, userId));
      return { ok: true };
    },

    /** Ten new recovery codes; the old ones stop working. */
    async regenerateRecoveryCodes(
      userId: string,
      code: string,
    ): Promise<Result<{ recoveryCodes: string[] }>> {
      const user = await access.findUserById(userId);
      if (!user?.totpEnabledAt) return failure('TWO_FACTOR_NOT_ENABLED', 'Two-factor authentication is off');
      const used = await useSecondFactor(userId, code);
      if (!used.ok) return used;
      return { ok: true, recoveryCodes: await issueRecoveryCodes(userId) };
    },

    /**
     * The second step of sign-in: the MFA token from the first step and a code give a session.
     * The token is single use; after a wrong code a fresh one is returned with the error, so the
     * person can retry without the first factor again, until the user's wrong codes pause checks.
     */
    async completeSignIn(
      mfaToken: string,
      code: string,
      origin: RequestOrigin,
    ): Promise<Result<{ user: User; session: Session; token: string; via: 'totp' | 'recovery' }>> {
      const challenge = await access.consumeMfaChallenge(mfaToken);
      if (!challenge)
        return failure('MFA_TOKEN_INVALID', 'The sign-in expired or was completed: sign in again');
      const used = await useSecondFactor(challenge.userId, code);
      if (!used.ok) {
        if (used.code !== 'TWO_FACTOR_CODE_INVALID') return used;
        const retry = await access.createMfaChallenge(challenge.userId, {
          method: challenge.method,
          ip: challenge.ip ?? undefined,
          userAgent: challenge.userAgent ?? undefined,
        });
        return { ...used, mfaToken: retry.mfaToken, expiresAt: retry.expiresAt };
      }
      const user = await access.findUserById(challenge.userId);
      if (!user) return failure('MFA_TOKEN_INVALID', 'The user no longer exists');
      const { session, token } = await access.createSessionForUser(user.id, {
        method: challenge.method,
        ip: origin.ip ?? challenge.ip ?? undefined,
        userAgent: origin.userAgent ?? challenge.userAgent ?? undefined,
      });
      return { ok: true, user, session, token, via: used.via };
    },

    getPolicy: policyOf,

    /**
     * Turns the org's requirement on or off. Turning it on needs the person doing it to use 2FA
     * themselves, so the policy never starts by locking out the one who set it.
     */
    async setPolicy(
      orgId: string,
      requireForAdmins: boolean,
      actor: { userId?: string | undefined },
    ): Promise<Result<{ policy: TwoFactorPolicy }>> {
      if (requireForAdmins && actor.userId) {
        const user = await access.findUserById(actor.userId);
        if (!user?.totpEnabledAt) {
          return failure('TWO_FACTOR_REQUIRED', 'Enable two-factor authentication on your own account first');
        }
      }
      const row = await store.upsertTwoFactorPolicy(db, {
        org_id: orgId,
        require_for_admins: requireForAdmins,
        updated_by: actor.userId ?? null,
        updated_at: clock.now(),
      });
      return {
        ok: true,
        policy: { orgId, requireForAdmins: row.require_for_admins, updatedAt: row.updated_at },
      };
    },

    /**
     * Whether a person acting in an org must be refused until they enrol: the org requires 2FA,
     * their role is one it applies to, and they have not turned it on.
     */
    async mustEnrol(orgId: string, userId: string): Promise<boolean> {
      const policy = await store.findTwoFactorPolicy(db, orgId);
      if (!policy?.require_for_admins) return false;
      const [membership, user] = await Promise.all([
        access.getMembership(orgId, userId),
        access.findUserById(userId),
      ]);
      return (
        membership !== undefined && TWO_FACTOR_POLICY_ROLES.includes(membership.role) && !user?.totpEnabledAt
      );
    },
  };
}
