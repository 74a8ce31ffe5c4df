import client from 'prom-client';
import type { KeelModule } from '../../infra/module.ts';
import type { Runtime } from '../../infra/runtime.ts';
import type { EventsService } from '../../platform/events/index.ts';
import { LEDGER_ERRORS } from './errors.ts';
import { LEDGER_EVENTS } from './events.ts';
import { LEDGER_IDS } from './ids.ts';
import { ledgerJobs } from './jobs.ts';
import { LEDGER_PERMISSIONS } from './permissions.ts';
import { ledgerRoutes } from './routes.ts';
import { createLedgerService, type LedgerService } from './service.ts';

export { MAX_AMOUNT } from './domain/model.ts';
export type { TransferJson } from './schemas.ts';
export type { AccountJson, BulkResult, LedgerService, Reconciliation, Result } from './service.ts';
export { createLedgerService } from './service.ts';

/** The ledger: double-entry, immutable, idempotent, with two-phase transfers (docs/ledger.md). */
export function createLedgerModule(
  runtime: Runtime,
  deps: { events: Pick<EventsService, 'emit'> },
): KeelModule & { service: LedgerService } {
  const registers = [runtime.metrics.registry];
  const batchTransfers = new client.Histogram({
    name: 'keel_ledger_batch_transfers',
    help: 'Transfers per committed ledger batch.',
    buckets: [1, 8, 64, 256, 1_024, 4_096, 8_190],
    registers,
  });
  const batchDuration = new client.Histogram({
    name: 'keel_ledger_batch_duration_seconds',
    help: 'Time from a ledger batch starting to its commit, retries included.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });
  const batchRetries = new client.Counter({
    name: 'keel_ledger_batch_retries_total',
    help: 'Ledger batches run again after losing a race to another batch.',
    registers,
  });
  const service = createLedgerService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    log: runtime.log.child({ module: 'ledger' }),
    events: deps.events,
    engine: {
      onBatch: (batch) => {
        batchTransfers.observe(batch.transfers);
        batchDuration.observe(batch.durationMs / 1000);
        if (batch.attempts > 1) batchRetries.inc(batch.attempts - 1);
      },
    },
  });
  return {
    name: 'ledger',
    vocabulary: {
      errors: LEDGER_ERRORS,
      idPrefixes: LEDGER_IDS,
      permissions: LEDGER_PERMISSIONS,
      events: LEDGER_EVENTS,
    },
    service,
    routes: ledgerRoutes(service),
    jobs: ledgerJobs(service, runtime.database.db),
    close: () => service.close(),
  };
}
