import { randomBytes } from 'node:crypto';
import { type Hex, toHex } from 'viem';
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import type { ChainRegistry } from '../../../infra/chains/index.ts';
import type { Clock } from '../../../infra/clock.ts';
import type { Database, Tx } from '../../../infra/db/database.ts';
import { KeelError } from '../../../infra/http/errors.ts';
import type { IdGenerator } from '../../../infra/ids.ts';
import type { SecretBox } from '../../../infra/keystore/secret-box.ts';
import type { VerdictSource } from '../index.ts';
import { REGISTRY_NAME } from './contract.ts';
import { commitmentOf, SALT_BYTES } from './domain/commitment.ts';
import { confirmationsRequired } from './domain/tracking.ts';
import * as store from './store.ts';

/** Chains one request may attest on. */
export const MAX_CHAINS_PER_REQUEST = 10;
/**
 * A verdict that lapses sooner than this is not attested: the transaction could be mined after
 * the expiry, and the registry refuses an expiry in the past.
 */
export const MIN_REMAINING_VALIDITY_MS = 10 * 60 * 1000;

export interface AttestationView {
  readonly attestation: store.AttestationRow;
  readonly attestTx: store.AttestationTxRow | undefined;
  readonly revokeTx: store.AttestationTxRow | undefined;
  readonly requiredConfirmations: number;
}

export interface AttestationsDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly newId: IdGenerator;
  readonly chains: ChainRegistry;
  readonly secretBox: SecretBox;
  readonly verdicts: Pick<VerdictSource, 'getVerdict'>;
  /** Called after new transactions are queued, so a tracker in this process sends them now. */
  readonly onQueued?: () => void;
}

export type AttestationsService = ReturnType<typeof createAttestationsService>;

const signerContext = (orgId: string) => `identity.attestation-signer:${orgId}`;

/**
 * Attestations of verified verdicts on EVM chains, written by the org's own signer key into the
 * KeelAttestationRegistry deployed on each chain. Requests only queue transactions; the tracker
 * (tracker.ts) signs, sends and follows them to their confirmation threshold.
 */
export function createAttestationsService(deps: AttestationsDeps) {
  const { database, clock, newId, secretBox } = deps;
  const db = database.db;
  const accounts = new Map<string, PrivateKeyAccount>();

  /** The org's signer row, generated (and sealed) on first use; concurrent first uses agree. */
  async function signerRow(orgId: string): Promise<store.SignerRow> {
    const existing = await store.findSigner(db, orgId);
    if (existing) return existing;
    const privateKey = generatePrivateKey();
    return store.insertSigner(db, {
      org_id: orgId,
      address: privateKeyToAccount(privateKey).address,
      private_key_sealed: secretBox.seal(privateKey, signerContext(orgId)),
      created_at: clock.now(),
    });
  }

  function viewsOf(rows: store.AttestationRow[], txs: store.AttestationTxRow[]): AttestationView[] {
    return rows.map((attestation) => ({
      attestation,
      attestTx: txs.find((tx) => tx.attestation_id === attestation.id && tx.kind === 'attest'),
      revokeTx: txs.find((tx) => tx.attestation_id === attestation.id && tx.kind === 'revoke'),
      requiredConfirmations: confirmationsRequired(attestation.chain_id),
    }));
  }

  async function list(orgId: string, verificationId: string): Promise<AttestationView[]> {
    const rows = await store.listAttestations(db, orgId, verificationId);
    return viewsOf(
      rows,
      await store.txsOf(
        db,
        orgId,
        rows.map((row) => row.id),
      ),
    );
  }

  const queuedTx = (row: store.AttestationRow, kind: store.TxKind, now: Date): store.AttestationTxRow => ({
    org_id: row.org_id,
    id: newId('atx'),
    attestation_id: row.id,
    chain_id: row.chain_id,
    kind,
    status: 'queued',
    tx_hash: null,
    raw_tx: null,
    nonce: null,
    block_number: null,
    block_hash: null,
    confirmations: 0,
    broadcasts: 0,
    signings: 0,
    reorgs: 0,
    failures: 0,
    last_error: null,
    next_check_at: now,
    lease_until: null,
    created_at: now,
    updated_at: now,
    confirmed_at: null,
  });

  /**
   * Withdraws a verification's attestations, in the caller's transaction: an attestation never
   * signed is cancelled, one that lapsed on chain already (`expiredBy`) is marked expired, and
   * every other gets a revoke transaction. Returns how many were withdrawn.
   */
  async function withdraw(tx: Tx, orgId: string, verificationId: string, expiredBy?: Date): Promise<number> {
    const rows = await tx
      .selectFrom('identity_attestations')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('verification_id', '=', verificationId)
      .where('status', 'in', ['pending', 'confirmed'])
      .forUpdate()
      .execute();
    const now = clock.now();
    for (const raw of rows) {
      const row = { ...raw, chain_id: Number(raw.chain_id) };
      const attestTx = await store.findTx(tx, orgId, row.id, 'attest');
      if (attestTx && attestTx.status === 'queued' && attestTx.tx_hash === null) {
        // Never signed, so never on chain: nothing to revoke.
        await store.updateTx(tx, orgId, attestTx.id, { status: 'cancelled', lease_until: null }, now);
        await store.setAttestationStatus(tx, orgId, row.id, 'revoked', now, { revoked_at: now });
      } else if (expiredBy && row.expires_at && row.expires_at.getTime() <= expiredBy.getTime()) {
        await store.setAttestationStatus(tx, orgId, row.id, 'expired', now);
      } else {
        await store.insertTx(tx, queuedTx(row, 'revoke', now));
        await store.setAttestationStatus(tx, orgId, row.id, 'revoking', now);
      }
    }
    return rows.length;
  }

  async function requireVerification(orgId: string, verificationId: string) {
    const verdict = await deps.verdicts.getVerdict(orgId, verificationId);
    if (!verdict) throw new KeelError('VERIFICATION_NOT_FOUND', `No verification ${verificationId}`);
    return verdict;
  }

  return {
    list,

    /** A verification's attestations; another org's verification is 404 like a missing one. */
    async listForVerification(orgId: string, verificationId: string): Promise<AttestationView[]> {
      await requireVerification(orgId, verificationId);
      return list(orgId, verificationId);
    },

    /**
     * The signer address (to fund on each chain; the key never leaves Keel), and per configured
     * chain its registry and the signer's balance.
     */
    async signerStatus(orgId: string) {
      const address = (await signerRow(orgId)).address as Hex;
      const chains = await Promise.all(
        deps.chains.chainIds.map(async (chainId) => {
          const registry = await store.findContract(db, chainId, REGISTRY_NAME);
          const balance = await deps.chains
            .client(chainId)!
            .getBalance({ address })
            .catch(() => null);
          return {
            chainId,
            registryAddress: registry?.address ?? null,
            balanceWei: balance === null ? null : balance.toString(),
          };
        }),
      );
      return { address, chains };
    },

    /** The org's signer as a viem account, for the tracker to sign with. */
    async signerAccount(orgId: string): Promise<PrivateKeyAccount> {
      const row = await signerRow(orgId);
      let account = accounts.get(row.private_key_sealed);
      if (!account) {
        account = privateKeyToAccount(secretBox.open(row.private_key_sealed, signerContext(orgId)) as Hex);
        accounts.set(row.private_key_sealed, account);
      }
      return account;
    },

    /**
     * Queues an attestation of a verified verdict on each chain. A chain where the verification
     * is already attested keeps its attestation (whatever its status) and gets no new one.
     */
    async attest(
      orgId: string,
      verificationId: string,
      chainIds: readonly number[],
    ): Promise<AttestationView[]> {
      const verdict = await requireVerification(orgId, verificationId);
      const now = clock.now();
      if (verdict.outcome !== 'verified') {
        throw new KeelError('VERDICT_NOT_ATTESTABLE', `The verdict is ${verdict.outcome}, not verified`);
      }
      if (verdict.expiredAt) {
        throw new KeelError(
          'VERDICT_NOT_ATTESTABLE',
          'The verdict expired and was replaced by a re-verification',
        );
      }
      if (verdict.expiresAt && verdict.expiresAt.getTime() < now.getTime() + MIN_REMAINING_VALIDITY_MS) {
        throw new KeelError('VERDICT_NOT_ATTESTABLE', 'The verdict expires too soon to be attested');
      }
      const unique = [...new Set(chainIds)];
      const registries = new Map<number, string>();
      const unavailable: string[] = [];
      for (const chainId of unique) {
        const registry = await store.findContract(db, chainId, REGISTRY_NAME);
        if (!deps.chains.client(chainId)) unavailable.push(`${chainId} (no RPC URL in CHAIN_RPC_URLS)`);
        else if (!registry)
          unavailable.push(`${chainId} (no registry: run keel contracts deploy --chain ${chainId})`);
        else registries.set(chainId, registry.address);
      }
      if (unavailable.length > 0) {
        throw new KeelError(
          'ATTESTATION_CHAIN_UNAVAILABLE',
          `Cannot attest on chain ${unavailable.join(', ')}`,
        );
      }
      const attester = (await signerRow(orgId)).address;
      const queued = await database.transaction(async (tx) => {
        let count = 0;
        for (const chainId of unique) {
          const salt = toHex(randomBytes(SALT_BYTES));
          const row: store.AttestationRow = {
            org_id: orgId,
            id: newId('att'),
            verification_id: verificationId,
            subject_id: verdict.subjectId,
            chain_id: chainId,
            registry_address: registries.get(chainId)!,
            attester,
            commitment: commitmentOf({ salt, orgId, subjectId: verdict.subjectId, verificationId }),
            salt,
            expires_at: verdict.expiresAt,
            status: 'pending',
            created_at: now,
            updated_at: now,
            confirmed_at: null,
            revoked_at: null,
          };
          if (await store.insertAttestation(tx, row)) {
            await store.insertTx(tx, queuedTx(row, 'attest', now));
            count++;
          }
        }
        return count;
      });
      if (queued > 0) deps.onQueued?.();
      return (await list(orgId, verificationId)).filter((view) => unique.includes(view.attestation.chain_id));
    },

    /** Revokes every attestation of the verification on chain (the DELETE route). */
    async revoke(orgId: string, verificationId: string): Promise<AttestationView[]> {
      await requireVerification(orgId, verificationId);
      const existing = await store.listAttestations(db, orgId, verificationId);
      if (existing.length === 0) {
        throw new KeelError('ATTESTATION_NOT_FOUND', `Verification ${verificationId} has no attestation`);
      }
      const withdrawn = await database.transaction((tx) => withdraw(tx, orgId, verificationId));
      if (withdrawn > 0) deps.onQueued?.();
      return list(orgId, verificationId);
    },

    /**
     * For the identity core, in its own transaction: a verification that was revoked, or that
     * expired (`expiredBy`: attestations whose on-chain expiry has passed by then need no
     * transaction), is withdrawn from every chain.
     */
    withdrawVerification: withdraw,
  };
}
