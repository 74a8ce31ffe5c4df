import { sql } from 'kysely';
import {
  BaseError,
  encodeFunctionData,
  type Hex,
  keccak256,
  type PublicClient,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type TransactionSerializable,
} from 'viem';
import {
  getTransaction,
  getTransactionReceipt,
  prepareTransactionRequest,
  sendRawTransaction,
} from 'viem/actions';
import type { ChainRegistry } from '../../../infra/chains/index.ts';
import type { Clock } from '../../../infra/clock.ts';
import type { Database } from '../../../infra/db/database.ts';
import type { Logger } from '../../../infra/observability/logger.ts';
import type { EventsService } from '../../../platform/events/index.ts';
import { REGISTRY_ABI } from './contract.ts';
import {
  backoffMs,
  confirmationsRequired,
  type Decision,
  decide,
  type Observation,
} from './domain/tracking.ts';
import { ATTESTATION_CONFIRMED, ATTESTATION_FAILED, ATTESTATION_REVOKED } from './events.ts';
import type { AttestationsService } from './service.ts';
import * as store from './store.ts';

/** Transactions leased per pass. */
export const TRACKER_BATCH = 50;
/** A leased transaction whose worker vanished is looked at again after this long. */
export const TRACKER_LEASE_MS = 60_000;
/** How often a sent transaction is looked at: about a block on the fastest chains Keel serves. */
export const TRACKER_POLL_MS = 2_000;
/** Events read per pass by the verification-event consumer. */
export const EVENT_BATCH = 500;
/** The consumer's row in `event_consumers`. */
export const EVENT_CONSUMER = 'identity.attestations';
/** Verification events that withdraw its attestations from every chain. */
export const WITHDRAWING_EVENTS = ['verification.revoked', 'verification.expired'] as const;

export interface TrackerDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly chains: ChainRegistry;
  readonly log: Logger;
  readonly events: Pick<EventsService, 'emit' | 'readAll'>;
  readonly service: Pick<AttestationsService, 'signerAccount' | 'withdrawVerification'>;
}

export type Tracker = ReturnType<typeof createTracker>;

/** One line on what went wrong: viem's summary and the node's own words (e.g. "insufficient funds"). */
function firstLine(error: unknown): string {
  if (error instanceof BaseError) {
    return `${error.shortMessage}${error.details && error.details !== error.shortMessage ? ` (${error.details})` : ''}`;
  }
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/**
 * Follows each attestation transaction to its confirmation threshold, safely across reorgs and
 * any number of workers:
 *  - a queued transaction is signed with the org's key under a per-(signer, chain) advisory
 *    lock (so two workers never pick the same nonce), stored, then broadcast;
 *  - a sent one is looked up: its receipt's block must be canonical, and it is confirmed once
 *    `confirmationsRequired(chain)` blocks include it;
 *  - if it leaves the chain (reorg) or the node forgets it, the same signed bytes are
 *    broadcast again; if the node refuses them (their nonce was taken), it is signed anew,
 *    unless the chain already shows the effect (an earlier copy landed).
 */
export function createTracker(deps: TrackerDeps) {
  const { database, clock, chains, events, service } = deps;
  const db = database.db;
  const log = deps.log.child({ component: 'identity-attestations' });

  async function onChainState(client: PublicClient, attestation: store.AttestationRow) {
    return client.readContract({
      address: attestation.registry_address as Hex,
      abi: REGISTRY_ABI,
      functionName: 'attestationOf',
      args: [attestation.attester as Hex, attestation.commitment as Hex],
    });
  }

  /** Whether the chain already shows what `tx` is for: an earlier copy of it landed. */
  async function alreadyDone(client: PublicClient, attestation: store.AttestationRow, kind: store.TxKind) {
    const state = await onChainState(client, attestation);
    return kind === 'attest' ? state.attestedAt !== 0n : state.revokedAt !== 0n;
  }

  async function signAndSend(
    client: PublicClient,
    tx: store.AttestationTxRow,
    attestation: store.AttestationRow,
  ) {
    const account = await service.signerAccount(tx.org_id);
    const data =
      tx.kind === 'attest'
        ? encodeFunctionData({
            abi: REGISTRY_ABI,
            functionName: 'attest',
            args: [
              attestation.commitment as Hex,
              attestation.expires_at ? BigInt(Math.floor(attestation.expires_at.getTime() / 1000)) : 0n,
            ],
          })
        : encodeFunctionData({
            abi: REGISTRY_ABI,
            functionName: 'revoke',
            args: [attestation.commitment as Hex],
          });
    await database.transaction(async (trx) => {
      // One signer per chain signs one transaction at a time, across every process.
      await sql`select pg_advisory_xact_lock(hashtextextended(${`identity.attest:${account.address}:${tx.chain_id}`}, 0))`.execute(
        trx,
      );
      const now = clock.now();
      if (await alreadyDone(client, attestation, tx.kind)) {
        // Only reachable when a copy this row no longer names landed; its receipt is unknown.
        await store.updateTx(
          trx,
          tx.org_id,
          tx.id,
          tx.tx_hash
            ? { status: 'sent', next_check_at: new Date(now.getTime() + TRACKER_POLL_MS), lease_until: null }
            : {
                status: 'failed',
                last_error: 'already on chain without a known transaction',
                lease_until: null,
              },
          now,
        );
        return;
      }
      const request = await prepareTransactionRequest(client, {
        account,
        to: attestation.registry_address as Hex,
        data,
        chain: null,
      });
      const raw = await account.signTransaction(request as TransactionSerializable);
      const hash = keccak256(raw);
      // Stored before it is broadcast: a crash after the broadcast cannot lose the transaction.
      await store.updateTx(
        trx,
        tx.org_id,
        tx.id,
        {
          status: 'sent',
          tx_hash: hash,
          raw_tx: raw,
          nonce: request.nonce,
          block_number: null,
          block_hash: null,
          confirmations: 0,
          signings: tx.signings + 1,
          last_error: null,
          next_check_at: new Date(now.getTime() + TRACKER_POLL_MS),
          lease_until: null,
        },
        now,
      );
      try {
        await sendRawTransaction(client, { serializedTransaction: raw });
        await store.updateTx(trx, tx.org_id, tx.id, { broadcasts: tx.broadcasts + 1, failures: 0 }, now);
      } catch (error) {
        // Kept as sent (the node may have it after all): the next look, after a back-off, finds it
        // unknown and broadcasts it again. An unfunded signer says so here.
        const failures = tx.failures + 1;
        await store.updateTx(
          trx,
          tx.org_id,
          tx.id,
          {
            failures,
            last_error: `broadcast: ${firstLine(error)}`,
            next_check_at: new Date(now.getTime() + backoffMs(failures)),
          },
          now,
        );
      }
      log.info(
        { orgId: tx.org_id, chainId: tx.chain_id, kind: tx.kind, txHash: hash },
        'attestation transaction sent',
      );
    });
  }

  async function observe(client: PublicClient, hash: Hex): Promise<Observation> {
    try {
      const receipt = await getTransactionReceipt(client, { hash });
      const [block, head] = await Promise.all([
        client.getBlock({ blockNumber: receipt.blockNumber }),
        // Uncached: viem keeps the block number for a polling interval by default.
        client.getBlockNumber({ cacheTime: 0 }),
      ]);
      return {
        kind: 'mined',
        blockNumber: Number(receipt.blockNumber),
        blockHash: receipt.blockHash,
        canonical: block.hash === receipt.blockHash,
        reverted: receipt.status === 'reverted',
        head: Number(head),
      };
    } catch (error) {
      if (!(error instanceof TransactionReceiptNotFoundError)) throw error;
    }
    try {
      await getTransaction(client, { hash });
      return { kind: 'pending' };
    } catch (error) {
      if (error instanceof TransactionNotFoundError) return { kind: 'unknown' };
      throw error;
    }
  }

  async function settle(
    tx: store.AttestationTxRow,
    attestation: store.AttestationRow,
    decision: Decision & { action: 'confirm' | 'fail' },
  ) {
    await database.transaction(async (trx) => {
      const now = clock.now();
      const common = {
        attestationId: attestation.id,
        verificationId: attestation.verification_id,
        chainId: attestation.chain_id,
        txHash: tx.tx_hash!,
      };
      if (decision.action === 'fail') {
        await store.updateTx(
          trx,
          tx.org_id,
          tx.id,
          {
            status: 'failed',
            block_number: decision.blockNumber,
            block_hash: decision.blockHash,
            last_error: decision.reason,
            lease_until: null,
          },
          now,
        );
        // A failed revocation leaves the attestation standing, so it can be revoked again.
        await store.setAttestationStatus(
          trx,
          tx.org_id,
          attestation.id,
          tx.kind === 'attest' ? 'failed' : 'confirmed',
          now,
        );
        await events.emit(trx, tx.org_id, [
          { type: ATTESTATION_FAILED.type, payload: { ...common, kind: tx.kind, reason: decision.reason } },
        ]);
        return;
      }
      await store.updateTx(
        trx,
        tx.org_id,
        tx.id,
        {
          status: 'confirmed',
          block_number: decision.blockNumber,
          block_hash: decision.blockHash,
          confirmations: decision.confirmations,
          reorgs: tx.reorgs + (decision.reorged ? 1 : 0),
          confirmed_at: now,
          lease_until: null,
        },
        now,
      );
      const payload = {
        ...common,
        subjectId: attestation.subject_id,
        registryAddress: attestation.registry_address,
        attester: attestation.attester,
        commitment: attestation.commitment,
        blockNumber: decision.blockNumber,
        confirmations: decision.confirmations,
      };
      if (tx.kind === 'attest') {
        // A revocation queued meanwhile keeps the attestation `revoking`.
        if (attestation.status === 'pending') {
          await store.setAttestationStatus(trx, tx.org_id, attestation.id, 'confirmed', now, {
            confirmed_at: now,
          });
        }
        await events.emit(trx, tx.org_id, [{ type: ATTESTATION_CONFIRMED.type, payload }]);
      } else {
        await store.setAttestationStatus(trx, tx.org_id, attestation.id, 'revoked', now, { revoked_at: now });
        await events.emit(trx, tx.org_id, [{ type: ATTESTATION_REVOKED.type, payload }]);
      }
    });
    log.info(
      { orgId: tx.org_id, chainId: tx.chain_id, kind: tx.kind, txHash: tx.tx_hash, outcome: decision.action },
      'attestation transaction settled',
    );
  }

  /** One look at one leased transaction. */
  async function process(tx: store.AttestationTxRow): Promise<void> {
    const now = clock.now();
    const attestation = await store.findAttestation(db, tx.org_id, tx.attestation_id);
    if (!attestation) return;
    const client = chains.client(tx.chain_id);
    if (!client) throw new Error(`chain ${tx.chain_id} has no RPC URL in CHAIN_RPC_URLS`);
    const later = (ms = TRACKER_POLL_MS) => new Date(now.getTime() + ms);

    if (tx.kind === 'revoke') {
      // Revoke only what is final on chain; the nonce order alone does not survive a reorg.
      const attestTx = await store.findTx(db, tx.org_id, tx.attestation_id, 'attest');
      if (attestTx?.status === 'failed' || attestTx?.status === 'cancelled') {
        await store.updateTx(db, tx.org_id, tx.id, { status: 'cancelled', lease_until: null }, now);
        await store.setAttestationStatus(db, tx.org_id, attestation.id, 'revoked', now, { revoked_at: now });
        return;
      }
      if (attestTx?.status !== 'confirmed') {
        await store.updateTx(db, tx.org_id, tx.id, { next_check_at: later(), lease_until: null }, now);
        return;
      }
    }

    if (tx.status === 'queued' || !tx.tx_hash || !tx.raw_tx) return signAndSend(client, tx, attestation);

    const decision = decide(
      { blockHash: tx.block_hash },
      await observe(client, tx.tx_hash as Hex),
      confirmationsRequired(tx.chain_id),
    );
    if (decision.reorged) {
      log.warn(
        { orgId: tx.org_id, chainId: tx.chain_id, txHash: tx.tx_hash, was: tx.block_hash },
        'attestation transaction reorged',
      );
    }
    const reorgs = tx.reorgs + (decision.reorged ? 1 : 0);
    switch (decision.action) {
      case 'confirm':
      case 'fail':
        return settle(tx, attestation, decision);
      case 'wait':
        await store.updateTx(
          db,
          tx.org_id,
          tx.id,
          {
            block_number: decision.blockNumber,
            block_hash: decision.blockHash,
            confirmations: decision.confirmations,
            reorgs,
            failures: 0,
            next_check_at: later(),
            lease_until: null,
          },
          now,
        );
        return;
      case 'rebroadcast':
        try {
          await sendRawTransaction(client, { serializedTransaction: tx.raw_tx as Hex });
          await store.updateTx(
            db,
            tx.org_id,
            tx.id,
            {
              block_number: null,
              block_hash: null,
              confirmations: 0,
              reorgs,
              broadcasts: tx.broadcasts + 1,
              next_check_at: later(),
              lease_until: null,
            },
            now,
          );
          log.info(
            { orgId: tx.org_id, chainId: tx.chain_id, txHash: tx.tx_hash },
            'attestation transaction rebroadcast',
          );
        } catch (error) {
          // Its nonce was taken by another transaction: sign it again, unless a copy landed.
          log.info(
            { orgId: tx.org_id, txHash: tx.tx_hash, reason: firstLine(error) },
            'rebroadcast refused: signing again',
          );
          await store.updateTx(
            db,
            tx.org_id,
            tx.id,
            { block_number: null, block_hash: null, confirmations: 0, reorgs },
            now,
          );
          await signAndSend(client, { ...tx, reorgs }, attestation);
        }
        return;
    }
  }

  /** Withdraws the attestations of verifications the identity core revoked or expired. */
  async function consumeVerificationEvents(): Promise<number> {
    await sql`insert into event_consumers (name) values (${EVENT_CONSUMER}) on conflict do nothing`.execute(
      db,
    );
    return database.transaction(async (trx) => {
      const { rows } = await sql<{ cursor: string | null }>`
        select cursor from event_consumers where name = ${EVENT_CONSUMER} for update skip locked`.execute(
        trx,
      );
      if (rows.length === 0) return 0; // Another worker holds it.
      const batch = await events.readAll({ after: rows[0]!.cursor ?? undefined, limit: EVENT_BATCH });
      if (batch.length === 0) return 0;
      for (const event of batch) {
        if (!(WITHDRAWING_EVENTS as readonly string[]).includes(event.type)) continue;
        const { verificationId, expiresAt } = event.payload as { verificationId: string; expiresAt?: string };
        const expiredBy =
          event.type === 'verification.expired' && expiresAt ? new Date(expiresAt) : undefined;
        await service.withdrawVerification(trx, event.orgId, verificationId, expiredBy);
      }
      await sql`update event_consumers set cursor = ${batch.at(-1)!.cursor}, updated_at = ${clock.now()}
                where name = ${EVENT_CONSUMER}`.execute(trx);
      return batch.length;
    });
  }

  return {
    consumeVerificationEvents,

    /** One pass: withdraw what verification events ask, then look at every due transaction. */
    async tick(): Promise<{ processed: number }> {
      while ((await consumeVerificationEvents()) === EVENT_BATCH) {
        // A full batch: there may be more.
      }
      const now = clock.now();
      const due = await store.claimDueTxs(db, now, new Date(now.getTime() + TRACKER_LEASE_MS), TRACKER_BATCH);
      for (const tx of due) {
        try {
          await process(tx);
        } catch (error) {
          const failures = tx.failures + 1;
          log.warn(
            { err: error, orgId: tx.org_id, chainId: tx.chain_id, txId: tx.id, failures },
            'attestation transaction check failed',
          );
          await store.updateTx(
            db,
            tx.org_id,
            tx.id,
            {
              failures,
              last_error: firstLine(error),
              next_check_at: new Date(clock.now().getTime() + backoffMs(failures)),
              lease_until: null,
            },
            clock.now(),
          );
        }
      }
      return { processed: due.length };
    },
  };
}
