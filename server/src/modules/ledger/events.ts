import type { Tx } from '../../infra/db/database.ts';
import { defineEvent, type EventsService } from '../../platform/events/index.ts';
import { AccountPayload, TransferPayload } from './schemas.ts';

/** The ledger's events, written through the transactional outbox in the transaction of the change. */
export const ACCOUNT_CREATED = defineEvent({
  type: 'account.created',
  version: 1,
  description: 'A ledger account was created.',
  payload: AccountPayload,
});
export const TRANSFER_PENDING = defineEvent({
  type: 'transfer.pending',
  version: 1,
  description: 'A pending transfer placed a hold on its accounts.',
  payload: TransferPayload,
});
export const TRANSFER_POSTED = defineEvent({
  type: 'transfer.posted',
  version: 1,
  description: 'Funds moved: a posted transfer, a post of a pending transfer, or a reversal.',
  payload: TransferPayload,
});
export const TRANSFER_VOIDED = defineEvent({
  type: 'transfer.voided',
  version: 1,
  description: 'A hold was released: a pending transfer was voided, or it expired (type `expire`).',
  payload: TransferPayload,
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const LEDGER_EVENTS = [ACCOUNT_CREATED, TRANSFER_PENDING, TRANSFER_POSTED, TRANSFER_VOIDED];

export type LedgerEvent = { readonly type: string; readonly payload: unknown };

/** The one place the ledger writes events. */
export async function emitLedgerEvents(
  events: Pick<EventsService, 'emit'>,
  tx: Tx,
  orgId: string,
  batch: readonly LedgerEvent[],
): Promise<void> {
  if (batch.length > 0) await events.emit(tx, orgId, batch);
}
