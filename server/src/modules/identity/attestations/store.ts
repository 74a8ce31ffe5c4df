import { sql } from 'kysely';
import type { Db, Tx } from '../../../infra/db/database.ts';

export interface ChainContractRow {
  chain_id: number;
  name: string;
  address: string;
  tx_hash: string;
  deployer: string;
  deployed_at: Date;
}

export interface SignerRow {
  org_id: string;
  address: string;
  private_key_sealed: string;
  created_at: Date;
}

export type AttestationStatus = 'pending' | 'confirmed' | 'revoking' | 'revoked' | 'expired' | 'failed';

export interface AttestationRow {
  org_id: string;
  id: string;
  verification_id: string;
  subject_id: string;
  chain_id: number;
  registry_address: string;
  attester: string;
  commitment: string;
  salt: string;
  expires_at: Date | null;
  status: AttestationStatus;
  created_at: Date;
  updated_at: Date;
  confirmed_at: Date | null;
  revoked_at: Date | null;
}

export type TxKind = 'attest' | 'revoke';
export type TxStatus = 'queued' | 'sent' | 'confirmed' | 'failed' | 'cancelled';

export interface AttestationTxRow {
  org_id: string;
  id: string;
  attestation_id: string;
  chain_id: number;
  kind: TxKind;
  status: TxStatus;
  tx_hash: string | null;
  raw_tx: string | null;
  nonce: number | null;
  block_number: number | null;
  block_hash: string | null;
  confirmations: number;
  broadcasts: number;
  signings: number;
  reorgs: number;
  failures: number;
  last_error: string | null;
  next_check_at: Date;
  lease_until: Date | null;
  created_at: Date;
  updated_at: Date;
  confirmed_at: Date | null;
}

declare module '../../../infra/db/tables.ts' {
  interface Tables {
    chain_contracts: ChainContractRow;
    identity_attestation_signers: SignerRow;
    identity_attestations: AttestationRow;
    identity_attestation_txs: AttestationTxRow;
  }
}

type Executor = Db | Tx;

// bigint columns come back from pg as strings: chain ids, nonces and block numbers fit a double.
const toNumber = (value: unknown) => (value === null ? null : Number(value));
const attestationRow = (row: AttestationRow): AttestationRow => ({ ...row, chain_id: Number(row.chain_id) });
const txRow = (row: AttestationTxRow): AttestationTxRow => ({
  ...row,
  chain_id: Number(row.chain_id),
  nonce: toNumber(row.nonce),
  block_number: toNumber(row.block_number),
});

export async function findContract(db: Executor, chainId: number, name: string) {
  const row = await db
    .selectFrom('chain_contracts')
    .selectAll()
    .where('chain_id', '=', chainId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row ? { ...row, chain_id: Number(row.chain_id) } : undefined;
}

export async function recordContract(db: Executor, row: ChainContractRow): Promise<void> {
  await db
    .insertInto('chain_contracts')
    .values(row)
    .onConflict((conflict) =>
      conflict.columns(['chain_id', 'name']).doUpdateSet({
        address: row.address,
        tx_hash: row.tx_hash,
        deployer: row.deployer,
        deployed_at: row.deployed_at,
      }),
    )
    .execute();
}

export function findSigner(db: Executor, orgId: string) {
  return db
    .selectFrom('identity_attestation_signers')
    .selectAll()
    .where('org_id', '=', orgId)
    .executeTakeFirst();
}

/** Inserts the org's signer unless one exists; the one that exists afterwards. */
export async function insertSigner(db: Db, row: SignerRow): Promise<SignerRow> {
  await db
    .insertInto('identity_attestation_signers')
    .values(row)
    .onConflict((conflict) => conflict.column('org_id').doNothing())
    .execute();
  const stored = await findSigner(db, row.org_id);
  if (!stored) throw new Error(`the signer of ${row.org_id} was inserted but cannot be read`);
  return stored;
}

export async function listAttestations(db: Executor, orgId: string, verificationId: string) {
  const rows = await db
    .selectFrom('identity_attestations')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('verification_id', '=', verificationId)
    .orderBy('chain_id')
    .execute();
  return rows.map(attestationRow);
}

export async function findAttestation(db: Executor, orgId: string, id: string) {
  const row = await db
    .selectFrom('identity_attestations')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row ? attestationRow(row) : undefined;
}

/** Inserts an attestation unless the verification has one on the chain; whether it did. */
export async function insertAttestation(tx: Tx, row: AttestationRow): Promise<boolean> {
  const inserted = await tx
    .insertInto('identity_attestations')
    .values(row)
    .onConflict((conflict) => conflict.columns(['org_id', 'verification_id', 'chain_id']).doNothing())
    .executeTakeFirst();
  return Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function setAttestationStatus(
  tx: Executor,
  orgId: string,
  id: string,
  status: AttestationStatus,
  now: Date,
  extra: { confirmed_at?: Date; revoked_at?: Date } = {},
): Promise<void> {
  await tx
    .updateTable('identity_attestations')
    .set({ status, updated_at: now, ...extra })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .execute();
}

export async function insertTx(tx: Tx, row: AttestationTxRow): Promise<void> {
  await tx
    .insertInto('identity_attestation_txs')
    .values(row)
    .onConflict((conflict) => conflict.columns(['org_id', 'attestation_id', 'kind']).doNothing())
    .execute();
}

export async function txsOf(db: Executor, orgId: string, attestationIds: readonly string[]) {
  if (attestationIds.length === 0) return [];
  const rows = await db
    .selectFrom('identity_attestation_txs')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('attestation_id', 'in', attestationIds)
    .execute();
  return rows.map(txRow);
}

export async function findTx(db: Executor, orgId: string, attestationId: string, kind: TxKind) {
  const row = await db
    .selectFrom('identity_attestation_txs')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('attestation_id', '=', attestationId)
    .where('kind', '=', kind)
    .executeTakeFirst();
  return row ? txRow(row) : undefined;
}

/**
 * Leases up to `limit` transactions due for a look, across orgs: SKIP LOCKED and a lease, so any
 * number of workers share the work and a vanished worker's lease runs out.
 */
export async function claimDueTxs(db: Db, now: Date, leaseUntil: Date, limit: number) {
  const { rows } = await sql<AttestationTxRow>`
    update identity_attestation_txs set lease_until = ${leaseUntil}
    where (org_id, id) in (
      select org_id, id from identity_attestation_txs
      where status in ('queued', 'sent') and next_check_at <= ${now}
        and (lease_until is null or lease_until < ${now})
      order by next_check_at
      limit ${limit}
      for update skip locked)
    returning *`.execute(db);
  return rows.map(txRow);
}

export type TxPatch = Partial<
  Pick<
    AttestationTxRow,
    | 'status'
    | 'tx_hash'
    | 'raw_tx'
    | 'nonce'
    | 'block_number'
    | 'block_hash'
    | 'confirmations'
    | 'broadcasts'
    | 'signings'
    | 'reorgs'
    | 'failures'
    | 'last_error'
    | 'next_check_at'
    | 'lease_until'
    | 'confirmed_at'
  >
>;

export async function updateTx(
  db: Executor,
  orgId: string,
  id: string,
  patch: TxPatch,
  now: Date,
): Promise<void> {
  await db
    .updateTable('identity_attestation_txs')
    .set({ ...patch, updated_at: now })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .execute();
}
