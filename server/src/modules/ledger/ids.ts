import { defineIdPrefixes } from '../../infra/ids.ts';

/**
 * The ledger's ids. They stay three letters: an id minted for an Idempotency-Key is derived from
 * its prefix (domain/ids.ts), so a new prefix would give a retried request a new transfer
 * (ARCHITECTURE.md, "Ids").
 */
export const LEDGER_IDS = defineIdPrefixes('ledger', [
  // A ledger account.
  'acc',
  // A transfer.
  'trf',
  // A transaction: the transfers of one request, applied together.
  'txn',
]);
