import { base58, base64 } from '@scure/base';
import { type Hex, isHex } from 'viem';
import { parseSiweMessage } from 'viem/siwe';
import type { ChainRegistry } from '../../../infra/chains/index.ts';
import type { Clock } from '../../../infra/clock.ts';
import type { Database } from '../../../infra/db/database.ts';
import { type FieldError, KeelError } from '../../../infra/http/errors.ts';
import type { IdGenerator } from '../../../infra/ids.ts';
import { randomBase62, verifySiweSignature } from '../../../platform/access/index.ts';
import type { EventsService } from '../../../platform/events/index.ts';
import type { SubjectsService, WalletDirectory } from '../index.ts';
import {
  type Account,
  controllerOf,
  formatAccount,
  makeAccount,
  type Namespace,
  parseAccount,
  possibleController,
  type WalletKind,
} from './domain/caip10.ts';
import { verifyAdr036 } from './domain/cosmos.ts';
import { challengeMessage, DEFAULT_STATEMENT } from './domain/messages.ts';
import { verifySolanaSignature } from './domain/solana.ts';
import { WALLET_LINKED, WALLET_UNLINKED } from './events.ts';
import * as store from './store.ts';

/** A challenge must be signed within this long. */
export const WALLET_CHALLENGE_TTL_MS = 10 * 60 * 1000;
/** Nonce length: 24 base62 characters (~143 bits); EIP-4361 asks for at least 8 alphanumerics. */
export const WALLET_NONCE_LENGTH = 24;
/** Wallets one subject may have linked at once. */
export const MAX_WALLETS_PER_SUBJECT = 50;
/** Expired challenges are deleted this long after they expire (kept a while for support). */
export const CHALLENGE_RETENTION_MS = 24 * 60 * 60 * 1000;

export interface Wallet {
  readonly id: string;
  readonly subjectId: string;
  readonly accountId: string;
  readonly namespace: Namespace;
  readonly reference: string;
  readonly address: string;
  readonly kind: WalletKind;
  readonly linkedAt: Date;
}

export interface Challenge {
  readonly id: string;
  readonly subjectId: string;
  readonly account: Account;
  readonly message: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface ChallengeInput {
  readonly namespace: Namespace;
  readonly reference: string;
  readonly address: string;
  readonly domain?: string;
  readonly uri?: string;
  readonly statement?: string;
}

export interface LinkInput {
  readonly challengeId: string;
  readonly signature: string;
  readonly publicKey?: string;
}

const toWallet = (row: store.WalletRow): Wallet => ({
  id: row.id,
  subjectId: row.subject_id,
  accountId: row.account_id,
  namespace: row.namespace,
  reference: row.reference,
  address: row.address,
  kind: row.kind,
  linkedAt: row.linked_at,
});

const invalidField = (path: string, message: string) =>
  new KeelError('VALIDATION_FAILED', `body${path} ${message}`, { errors: [{ path, in: 'body', message }] });

function decodeOrThrow(path: string, value: string, decode: (value: string) => Uint8Array, what: string) {
  try {
    return decode(value);
  } catch {
    throw invalidField(path, `must be ${what}`);
  }
}

export interface WalletsDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly chains: ChainRegistry;
  readonly events: Pick<EventsService, 'emit'>;
  readonly subjects: Pick<SubjectsService, 'require'>;
  /** PUBLIC_URL: the default domain and URI of a challenge message. */
  readonly publicUrl: string;
}

export type WalletsService = ReturnType<typeof createWalletsService>;

/**
 * Links wallets to subjects by signed challenge: Keel writes the message (SIWE, SIWS, or ADR-036
 * data), the wallet signs it, and Keel checks the signature over exactly the message it stored.
 * A wallet belongs to one subject per org: by its CAIP-10 id, and by the key behind it on every
 * chain of its namespace (see `controllerOf`).
 */
export function createWalletsService(deps: WalletsDeps) {
  const { database, clock, newId, events, subjects } = deps;
  const db = database.db;

  /** Checks the signature; the kind of wallet it proves, and the key for Cosmos. */
  async function prove(
    challenge: store.WalletChallengeRow,
    account: Account,
    input: LinkInput,
  ): Promise<{ kind: WalletKind; publicKey: string | null }> {
    const proofFailed = (detail: string) => new KeelError('WALLET_PROOF_INVALID', detail);
    switch (account.namespace) {
      case 'eip155': {
        if (!isHex(input.signature) || input.signature.length < 132) {
          throw invalidField('/signature', 'must be a 0x-prefixed hex signature (65 bytes or more)');
        }
        const parsed = parseSiweMessage(challenge.message);
        const checked = await verifySiweSignature({
          message: challenge.message,
          signature: input.signature as Hex,
          fields: {
            domain: parsed.domain!,
            address: account.address as Hex,
            uri: parsed.uri!,
            chainId: Number(account.reference),
            nonce: challenge.nonce,
            issuedAt: challenge.issued_at,
            expirationTime: challenge.expires_at,
            checkedAt: clock.now(),
          },
          chains: deps.chains,
        });
        if (!checked.ok) {
          if (checked.code === 'WALLET_SIGNATURE_INVALID') throw proofFailed(checked.detail);
          throw new KeelError(checked.code, checked.detail);
        }
        return { kind: checked.kind, publicKey: null };
      }
      case 'solana': {
        const signature = decodeOrThrow(
          '/signature',
          input.signature,
          base58.decode,
          'a base58 Ed25519 signature',
        );
        if (!verifySolanaSignature(account.address, challenge.message, signature)) {
          throw proofFailed('the Ed25519 signature does not match the address and the challenge message');
        }
        return { kind: 'ed25519', publicKey: null };
      }
      case 'cosmos': {
        if (!input.publicKey) throw invalidField('/publicKey', 'is required for a cosmos wallet');
        const signature = decodeOrThrow('/signature', input.signature, base64.decode, 'a base64 signature');
        const publicKey = decodeOrThrow('/publicKey', input.publicKey, base64.decode, 'a base64 public key');
        const checked = verifyAdr036({
          signer: account.address,
          message: challenge.message,
          signature,
          publicKey,
        });
        if (!checked.ok) throw proofFailed(checked.detail);
        return { kind: 'secp256k1', publicKey: input.publicKey };
      }
    }
  }

  function conflict(holder: store.WalletRow) {
    return new KeelError(
      'WALLET_LINKED_TO_OTHER_SUBJECT',
      `The wallet is linked to subject ${holder.subject_id} (as ${holder.account_id}); unlink it there first`,
      { members: { subjectId: holder.subject_id, accountId: holder.account_id } },
    );
  }

  async function unusableChallenge(detail: string): Promise<never> {
    throw new KeelError('WALLET_CHALLENGE_INVALID', `${detail}: request a new challenge and sign it`);
  }

  const directory: WalletDirectory = {
    async accountsOf(orgId, subjectId) {
      const rows = await db
        .selectFrom('identity_wallets')
        .select('account_id')
        .where('org_id', '=', orgId)
        .where('subject_id', '=', subjectId)
        .where('unlinked_at', 'is', null)
        .orderBy('linked_at')
        .orderBy('id')
        .execute();
      return rows.map((row) => row.account_id);
    },
    async subjectOf(orgId, caip10) {
      const parsed = parseAccount(caip10);
      if (!parsed.ok) return undefined;
      const account = parsed.value;
      const holder = await store.findLinkedHolder(
        db,
        orgId,
        formatAccount(account),
        account.namespace,
        possibleController(account),
      );
      return holder?.subject_id;
    },
  };

  return {
    directory,

    async createChallenge(orgId: string, subjectId: string, input: ChallengeInput): Promise<Challenge> {
      await subjects.require(orgId, subjectId);
      const made = makeAccount(input.namespace, input.reference, input.address);
      if (!made.ok) {
        const errors: FieldError[] = [
          { path: `/${made.field ?? 'address'}`, in: 'body', message: made.detail },
        ];
        throw new KeelError('VALIDATION_FAILED', made.detail, { errors });
      }
      const account = made.value;
      const issuedAt = clock.now();
      const expiresAt = new Date(issuedAt.getTime() + WALLET_CHALLENGE_TTL_MS);
      const id = newId('wch');
      const nonce = randomBase62(WALLET_NONCE_LENGTH);
      const publicUrl = new URL(deps.publicUrl);
      let message: string;
      try {
        message = challengeMessage(account, {
          domain: input.domain ?? publicUrl.host,
          uri: input.uri ?? deps.publicUrl,
          statement: input.statement ?? DEFAULT_STATEMENT,
          nonce,
          issuedAt,
          expiresAt,
          requestId: id,
        });
      } catch (error) {
        // viem refuses a domain, URI or statement EIP-4361 does not allow.
        throw new KeelError('VALIDATION_FAILED', (error as Error).message.split('\n')[0]);
      }
      await store.insertChallenge(db, {
        org_id: orgId,
        id,
        subject_id: subjectId,
        namespace: account.namespace,
        account_id: formatAccount(account),
        message,
        nonce,
        issued_at: issuedAt,
        expires_at: expiresAt,
        used_at: null,
      });
      return { id, subjectId, account, message, issuedAt, expiresAt };
    },

    /**
     * Links the challenge's wallet to the subject. Signature first, then the challenge is taken:
     * a forged signature never burns a challenge. Linking a wallet the subject already has answers
     * it with `created: false`.
     */
    async link(
      orgId: string,
      subjectId: string,
      input: LinkInput,
    ): Promise<{ wallet: Wallet; created: boolean }> {
      await subjects.require(orgId, subjectId);
      const challenge = await store.findChallenge(db, orgId, input.challengeId);
      if (!challenge || challenge.subject_id !== subjectId) {
        return unusableChallenge(`No challenge ${input.challengeId} for subject ${subjectId}`);
      }
      if (challenge.used_at) return unusableChallenge('The challenge was already used');
      if (challenge.expires_at.getTime() <= clock.now().getTime()) {
        return unusableChallenge('The challenge expired');
      }
      const parsed = parseAccount(challenge.account_id);
      if (!parsed.ok) throw new Error(`stored challenge ${challenge.id} has a bad account id`);
      const account = parsed.value;
      const proof = await prove(challenge, account, input);
      const controller = controllerOf(account, proof.kind);
      return database.transaction(async (tx) => {
        const now = clock.now();
        if (!(await store.takeChallenge(tx, orgId, challenge.id, now))) {
          return unusableChallenge('The challenge expired or was already used');
        }
        const accountId = formatAccount(account);
        const holder = await store.findLinkedHolder(tx, orgId, accountId, account.namespace, controller);
        if (holder) {
          if (holder.subject_id !== subjectId) throw conflict(holder);
          return { wallet: toWallet(holder), created: false };
        }
        if ((await store.countLinked(tx, orgId, subjectId)) >= MAX_WALLETS_PER_SUBJECT) {
          throw new KeelError(
            'TOO_MANY_WALLETS',
            `A subject may link at most ${MAX_WALLETS_PER_SUBJECT} wallets`,
          );
        }
        const inserted = await store.insertWallet(tx, {
          org_id: orgId,
          id: newId('wlk'),
          subject_id: subjectId,
          account_id: accountId,
          namespace: account.namespace,
          reference: account.reference,
          address: account.address,
          kind: proof.kind,
          controller,
          public_key: proof.publicKey,
          challenge_id: challenge.id,
          linked_at: now,
          unlinked_at: null,
        });
        if (!inserted) {
          // A concurrent link of the same wallet committed first: report whoever holds it.
          const winner = await store.findLinkedHolder(tx, orgId, accountId, account.namespace, controller);
          if (!winner) throw new Error('a link that lost a unique-index race must have a winner');
          if (winner.subject_id !== subjectId) throw conflict(winner);
          return { wallet: toWallet(winner), created: false };
        }
        await events.emit(tx, orgId, [
          {
            type: WALLET_LINKED.type,
            payload: { subjectId, walletId: inserted.id, accountId, kind: inserted.kind },
          },
        ]);
        return { wallet: toWallet(inserted), created: true };
      });
    },

    async list(
      orgId: string,
      subjectId: string,
      options: { cursor?: string; limit: number },
    ): Promise<{ data: Wallet[]; nextCursor: string | null }> {
      await subjects.require(orgId, subjectId);
      const rows = await store.listLinked(db, orgId, subjectId, options);
      const more = rows.length > options.limit;
      const data = (more ? rows.slice(0, options.limit) : rows).map(toWallet);
      return { data, nextCursor: more ? data.at(-1)!.id : null };
    },

    /** Unlinks the subject's wallet with this CAIP-10 id; the row stays as history. */
    async unlink(orgId: string, subjectId: string, caip10: string): Promise<Wallet> {
      await subjects.require(orgId, subjectId);
      const parsed = parseAccount(caip10);
      if (!parsed.ok) {
        throw new KeelError('VALIDATION_FAILED', `params/accountId ${parsed.detail}`, {
          errors: [{ path: '/accountId', in: 'params', message: parsed.detail }],
        });
      }
      const accountId = formatAccount(parsed.value);
      return database.transaction(async (tx) => {
        const row = await store.unlinkWallet(tx, orgId, subjectId, accountId, clock.now());
        if (!row)
          throw new KeelError('WALLET_NOT_FOUND', `Subject ${subjectId} has no linked wallet ${accountId}`);
        await events.emit(tx, orgId, [
          { type: WALLET_UNLINKED.type, payload: { subjectId, walletId: row.id, accountId } },
        ]);
        return toWallet(row);
      });
    },

    /** Deletes challenges that expired over a day ago; returns how many. */
    pruneChallenges: () =>
      store.pruneChallenges(db, new Date(clock.now().getTime() - CHALLENGE_RETENTION_MS)),
  };
}
