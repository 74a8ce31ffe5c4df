import { createHash } from 'node:crypto';
import type { Clock } from '../../../infra/clock.ts';
import type { Database } from '../../../infra/db/database.ts';
import type { ErrorCode } from '../../../infra/http/errors.ts';
import type { Mailer } from '../../../infra/mail/index.ts';
import type { Logger } from '../../../infra/observability/logger.ts';
import type { KeyValueStore } from '../../../infra/redis/kv.ts';
import { generateOpaqueToken, hashToken } from '../domain/tokens.ts';
import type { AccessService } from '../service.ts';
import { passwordResetMail, verificationMail } from './domain/messages.ts';
import * as store from './store.ts';

const HOUR_MS = 60 * 60 * 1000;
export const VERIFICATION_TOKEN_TTL_MS = 24 * HOUR_MS;
export const PASSWORD_RESET_TOKEN_TTL_MS = HOUR_MS;
/** Mails of one kind sent to one address per MAIL_THROTTLE_WINDOW_MS; more are dropped silently. */
export const MAILS_PER_ADDRESS_PER_WINDOW = 5;
export const MAIL_THROTTLE_WINDOW_MS = HOUR_MS;

export type Result<T> = ({ ok: true } & T) | { ok: false; code: ErrorCode; detail: string };
const invalidToken = () =>
  ({
    ok: false,
    code: 'EMAIL_TOKEN_INVALID',
    detail: 'The link is invalid, expired or was already used: ask for a new one',
  }) as const;

export interface EmailFlowsDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly kv: KeyValueStore;
  readonly mailer: Mailer;
  /** Keeps this deployment's keys apart from another's in a shared Redis. */
  readonly namespace: string;
  readonly log: Logger;
  /** Base of the links in mail: the dashboard's pages. */
  readonly publicUrl: string;
  readonly access: Pick<
    AccessService,
    'findUserByEmail' | 'findUserById' | 'markEmailVerified' | 'setPassword'
  >;
}

export type EmailFlowsService = ReturnType<typeof createEmailFlowsService>;

/**
 * Email verification and password reset. Asking for either answers the same whatever the
 * address: whether an account exists is never revealed, neither by the answer nor by its timing
 * (the token is made and the mail sent after the answer, in the background). Tokens are opaque,
 * single-use, expiring and stored as SHA-256; a new one replaces the previous one of its kind.
 */
export function createEmailFlowsService(deps: EmailFlowsDeps) {
  const { database, clock, kv, mailer, log, access } = deps;
  const db = database.db;
  const pending = new Set<Promise<void>>();

  /** Runs `work` after the response; failures are logged, never surfaced to the asker. */
  function inBackground(what: string, work: () => Promise<void>): void {
    const task = work()
      .catch((error) => log.warn({ err: error, flow: what }, 'email flow failed in the background'))
      .finally(() => pending.delete(task));
    pending.add(task);
  }

  async function underMailLimit(purpose: store.EmailTokenPurpose, email: string): Promise<boolean> {
    const address = createHash('sha256').update(email).digest('hex');
    const sent = await kv.increment(
      `mail:${deps.namespace}:${purpose}:${address}`,
      1,
      MAIL_THROTTLE_WINDOW_MS,
    );
    return sent <= MAILS_PER_ADDRESS_PER_WINDOW;
  }

  async function issue(
    purpose: store.EmailTokenPurpose,
    user: { id: string; email: string },
    ttlMs: number,
  ): Promise<{ token: string; expiresAt: Date }> {
    const token = generateOpaqueToken(purpose === 'verify_email' ? 'keel_ev' : 'keel_pr');
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + ttlMs);
    await database.transaction((tx) =>
      store.replaceToken(tx, {
        token_hash: hashToken(token),
        user_id: user.id,
        purpose,
        email: user.email,
        created_at: now,
        expires_at: expiresAt,
      }),
    );
    return { token, expiresAt };
  }

  return {
    /** Mails a verification link if the address belongs to an account not yet verified. */
    async requestVerification(email: string): Promise<void> {
      const user = await access.findUserByEmail(email);
      if (!user?.email || user.emailVerifiedAt) return;
      const address = user.email;
      inBackground('verify_email', async () => {
        if (!(await underMailLimit('verify_email', address))) return;
        const { token, expiresAt } = await issue(
          'verify_email',
          { id: user.id, email: address },
          VERIFICATION_TOKEN_TTL_MS,
        );
        await mailer.send(
          verificationMail(address, `${deps.publicUrl}/verify-email?token=${token}`, expiresAt),
        );
      });
    },

    async confirmVerification(token: string): Promise<Result<{ email: string }>> {
      const row = await store.takeToken(db, hashToken(token), 'verify_email', clock.now());
      if (!row) return invalidToken();
      const user = await access.findUserById(row.user_id);
      // The link proves the address it was mailed to; if the account's email changed since, not this one.
      if (user?.email !== row.email) return invalidToken();
      if (!user.emailVerifiedAt) await access.markEmailVerified(user.id);
      return { ok: true, email: row.email };
    },

    /** Mails a reset link if the address belongs to an account. */
    async requestPasswordReset(email: string): Promise<void> {
      const user = await access.findUserByEmail(email);
      if (!user?.email) return;
      const address = user.email;
      inBackground('reset_password', async () => {
        if (!(await underMailLimit('reset_password', address))) return;
        const { token, expiresAt } = await issue(
          'reset_password',
          { id: user.id, email: address },
          PASSWORD_RESET_TOKEN_TTL_MS,
        );
        await mailer.send(
          passwordResetMail(address, `${deps.publicUrl}/reset-password?token=${token}`, expiresAt),
        );
      });
    },

    /**
     * Sets the new password and revokes every session of the user (whoever asked for the reset
     * may have been locked out by someone using one). The mailed link also proves the address.
     */
    async confirmPasswordReset(token: string, newPassword: string): Promise<Result<object>> {
      const row = await store.takeToken(db, hashToken(token), 'reset_password', clock.now());
      if (!row) return invalidToken();
      const user = await access.findUserById(row.user_id);
      if (user?.email !== row.email) return invalidToken();
      await access.setPassword(user.id, newPassword);
      if (!user.emailVerifiedAt) await access.markEmailVerified(user.id);
      await store.deleteTokensOfUser(db, user.id, 'reset_password');
      return { ok: true };
    },

    pruneTokens: () => store.pruneTokens(db, clock.now()),

    /** Waits for mail still being sent in the background (at shutdown, and in tests). */
    async drain(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
