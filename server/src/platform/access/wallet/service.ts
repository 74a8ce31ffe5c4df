import type { ChainRegistry } from '../../../infra/chains/index.ts';
import type { Clock } from '../../../infra/clock.ts';
import type { Database } from '../../../infra/db/database.ts';
import type { ErrorCode } from '../../../infra/http/errors.ts';
import type { IdGenerator } from '../../../infra/ids.ts';
import { randomBase62 } from '../domain/tokens.ts';
import type { AccessService, RequestOrigin, Session, User } from '../service.ts';
import * as accessStore from '../store.ts';
import { verifySiweSignature } from './domain/signature.ts';
import { caip10, checkSiweMessage, SIWE_NONCE_TTL_MS, type SiweFields } from './domain/siwe.ts';
import * as store from './store.ts';

class LostRace extends Error {}

/** Nonce length: 24 base62 characters (~143 bits); EIP-4361 asks for at least 8 alphanumerics. */
export const SIWE_NONCE_LENGTH = 24;
/** Wallets one user may link. */
export const MAX_WALLETS_PER_USER = 20;
/** The session `method` of a wallet sign-in. */
export const SIWE_SESSION_METHOD = 'siwe';

export type Result<T> = ({ ok: true } & T) | { ok: false; code: ErrorCode; detail: string };
const failure = (code: ErrorCode, detail: string) => ({ ok: false, code, detail }) as const;

export interface Wallet {
  readonly id: string;
  readonly accountId: string;
  readonly chainId: number;
  readonly address: string;
  readonly kind: store.WalletKind;
  readonly createdAt: Date;
  readonly lastUsedAt: Date;
}

const toWallet = (row: store.UserWalletRow): Wallet => ({
  id: row.id,
  accountId: row.account_id,
  chainId: row.chain_id,
  address: row.address,
  kind: row.kind,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

export interface WalletDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly chains: ChainRegistry;
  /** Web origins a SIWE message may come from: PUBLIC_URL's and CORS_ORIGINS. */
  readonly origins: readonly string[];
  readonly access: Pick<
    AccessService,
    'findUserById' | 'createSessionForUser' | 'createMfaChallenge' | 'requiresSecondFactor'
  >;
}

export type WalletService = ReturnType<typeof createWalletService>;

export type SignInOutcome =
  | { status: 'ok'; user: User; session: Session; token: string; wallet: Wallet; created: boolean }
  | { status: 'mfa_required'; mfaToken: string; expiresAt: Date };

/**
 * Sign-in with Ethereum (EIP-4361). The server issues single-use nonces; a wallet signs a
 * message naming this server's domain, one of its URIs and a nonce; `verify` checks the message,
 * the signature (EOA offline, smart-contract accounts on their chain) and takes the nonce.
 *
 * A wallet is one account: an EOA by its address on every chain, a contract account by its
 * CAIP-10 id (per chain). It belongs to one user.
 */
export function createWalletService(deps: WalletDeps) {
  const { database, clock, newId, access } = deps;
  const db = database.db;

  /** Message, signature, then nonce: a forged signature never burns someone's nonce. */
  async function verify(
    message: string,
    signature: `0x${string}`,
  ): Promise<Result<{ fields: SiweFields; kind: store.WalletKind }>> {
    const now = clock.now();
    const checked = checkSiweMessage(message, deps.origins, now);
    if (!checked.ok) return failure('SIWE_MESSAGE_INVALID', checked.detail);
    const signed = await verifySiweSignature({
      message,
      signature,
      fields: checked.fields,
      chains: deps.chains,
    });
    if (!signed.ok) return failure(signed.code, signed.detail);
    if (!(await store.takeNonce(db, checked.fields.nonce, now))) {
      return failure(
        'SIWE_NONCE_INVALID',
        'Request a new nonce from POST /v1/auth/wallet/nonce and sign again',
      );
    }
    return { ok: true, fields: checked.fields, kind: signed.kind };
  }

  async function findOrLink(
    userId: string,
    fields: SiweFields,
    kind: store.WalletKind,
  ): Promise<Result<{ wallet: Wallet; created: boolean }>> {
    const accountId = caip10(fields.chainId, fields.address);
    const existing = await store.findWallet(db, kind, fields.address, accountId);
    if (existing) {
      if (existing.user_id !== userId) {
        return failure(
          'WALLET_ALREADY_LINKED',
          'This wallet signs in to another account; unlink it there first',
        );
      }
      await store.touchWallet(db, existing.id, clock.now());
      return { ok: true, wallet: toWallet(existing), created: false };
    }
    if ((await store.listWallets(db, userId)).length >= MAX_WALLETS_PER_USER) {
      return failure('CONFLICT', `An account may link at most ${MAX_WALLETS_PER_USER} wallets`);
    }
    const now = clock.now();
    const inserted = await store.insertWallet(db, {
      id: newId('wal'),
      user_id: userId,
      account_id: accountId,
      chain_id: fields.chainId,
      address: fields.address,
      kind,
      created_at: now,
      last_used_at: now,
    });
    // Lost a race with another request linking the same wallet: report whoever won.
    if (!inserted) return findOrLink(userId, fields, kind);
    return { ok: true, wallet: toWallet(inserted), created: true };
  }

  /**
   * A new user who owns the wallet, in one transaction: a concurrent sign-up with the same
   * wallet loses on the unique index and leaves no user behind (undefined).
   */
  async function signUpWithWallet(fields: SiweFields, kind: store.WalletKind) {
    return database
      .transaction(async (tx) => {
        const now = clock.now();
        const user = await accessStore.insertUser(tx, {
          id: newId('usr'),
          email: null,
          email_verified_at: null,
          name: null,
          password_hash: null,
          totp_enabled_at: null,
          created_at: now,
          updated_at: now,
        });
        if (!user) throw new Error('a user without an email cannot conflict');
        const wallet = await store.insertWallet(tx, {
          id: newId('wal'),
          user_id: user.id,
          account_id: caip10(fields.chainId, fields.address),
          chain_id: fields.chainId,
          address: fields.address,
          kind,
          created_at: now,
          last_used_at: now,
        });
        if (!wallet) throw new LostRace();
        return wallet;
      })
      .catch((error) => {
        if (error instanceof LostRace) return undefined;
        throw error;
      });
  }

  return {
    async issueNonce(): Promise<{ nonce: string; issuedAt: Date; expiresAt: Date }> {
      const issuedAt = clock.now();
      const expiresAt = new Date(issuedAt.getTime() + SIWE_NONCE_TTL_MS);
      const nonce = randomBase62(SIWE_NONCE_LENGTH);
      await store.insertNonce(db, nonce, issuedAt, expiresAt);
      return { nonce, issuedAt, expiresAt };
    },

    /**
     * Signs in with a wallet: the user it is linked to, or a new user (no email, no password)
     * who owns it. A user with 2FA on gets an MFA challenge instead of a session.
     */
    async signIn(
      message: string,
      signature: `0x${string}`,
      origin: RequestOrigin,
    ): Promise<Result<{ outcome: SignInOutcome }>> {
      const verified = await verify(message, signature);
      if (!verified.ok) return verified;
      const { fields, kind } = verified;
      const accountId = caip10(fields.chainId, fields.address);
      let row = await store.findWallet(db, kind, fields.address, accountId);
      let created = false;
      if (row) {
        await store.touchWallet(db, row.id, clock.now());
      } else {
        row = await signUpWithWallet(fields, kind);
        created = row !== undefined;
        // Another request signed up with the same wallet first: sign in to that account.
        row ??= await store.findWallet(db, kind, fields.address, accountId);
        if (!row) throw new Error('a wallet that lost a sign-up race must exist');
      }
      const wallet = toWallet(row);
      const user = await access.findUserById(row.user_id);
      if (!user) return failure('NOT_FOUND', 'The wallet’s user no longer exists');
      if (access.requiresSecondFactor(user)) {
        const challenge = await access.createMfaChallenge(user.id, {
          method: SIWE_SESSION_METHOD,
          ...origin,
        });
        return { ok: true, outcome: { status: 'mfa_required', ...challenge } };
      }
      const { session, token } = await access.createSessionForUser(user.id, {
        method: SIWE_SESSION_METHOD,
        ...origin,
      });
      return { ok: true, outcome: { status: 'ok', user, session, token, wallet, created } };
    },

    /** Links the signing wallet to a signed-in user, who proves control by signing. */
    async link(
      userId: string,
      message: string,
      signature: `0x${string}`,
    ): Promise<Result<{ wallet: Wallet; created: boolean }>> {
      const verified = await verify(message, signature);
      if (!verified.ok) return verified;
      return findOrLink(userId, verified.fields, verified.kind);
    },

    async list(userId: string): Promise<Wallet[]> {
      return (await store.listWallets(db, userId)).map(toWallet);
    },

    /**
     * Unlinks a wallet, unless it is the user's last way to sign in (no password, no other wallet,
     * no SSO identity): the account would be unreachable.
     */
    async unlink(userId: string, walletId: string): Promise<Result<object>> {
      const wallets = await store.listWallets(db, userId);
      if (!wallets.some((wallet) => wallet.id === walletId))
        return failure('NOT_FOUND', `No wallet ${walletId}`);
      const user = await access.findUserById(userId);
      if (wallets.length === 1 && !user?.hasPassword && (await store.countIdentities(db, userId)) === 0) {
        return failure(
          'LAST_SIGN_IN_METHOD',
          'Set a password or link another wallet before unlinking this one',
        );
      }
      await store.deleteWallet(db, userId, walletId);
      return { ok: true };
    },

    /** Deletes expired nonces; returns how many. */
    pruneNonces: () => store.pruneNonces(db, clock.now()),
  };
}
