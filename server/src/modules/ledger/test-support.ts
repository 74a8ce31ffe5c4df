// Helpers shared by the ledger's tests: a ledger service on a test database, with the real events
// outbox, and short ways to make assets, accounts and transfers.
import assert from 'node:assert/strict';
import { type Clock, systemClock } from '../../infra/clock.ts';
import { createDatabase, type Database } from '../../infra/db/database.ts';
import { newId } from '../../infra/ids.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { createEventsService } from '../../platform/events/index.ts';
import type { TransferRequest } from './domain/requests.ts';
import type { EngineDeps } from './engine.ts';
import { type AccountJson, createLedgerService, type LedgerService, type Result } from './service.ts';

export interface TestLedger {
  readonly ledger: LedgerService;
  readonly database: Database;
  close(): Promise<void>;
}

/** A ledger service of its own (its own pool and batcher), like one replica of Keel. */
export function testLedger(
  url: string,
  options: {
    clock?: Clock;
    poolSize?: number;
    engine?: Partial<Pick<EngineDeps, 'maxBatchTransfers' | 'maxConcurrentBatches' | 'lingerMs'>>;
  } = {},
): TestLedger {
  const log = createLogger({
    level: (process.env.KEEL_TEST_LOG_LEVEL as 'silent') ?? 'silent',
    pretty: false,
  });
  const database = createDatabase({ url, poolSize: options.poolSize ?? 5, log });
  const clock = options.clock ?? systemClock;
  const events = createEventsService({ db: database.db, clock, newId });
  const ledger = createLedgerService({
    database,
    clock,
    newId,
    log,
    events,
    ...(options.engine && { engine: options.engine }),
  });
  return {
    ledger,
    database,
    close: async () => {
      await ledger.close();
      await database.close();
    },
  };
}

export function ok<T>(result: Result<T>): T {
  if (!result.ok) assert.fail(`expected success, got ${result.code}: ${result.detail}`);
  return result.value;
}

export function failed<T>(result: Result<T>) {
  if (result.ok) assert.fail(`expected a failure, got ${JSON.stringify(result.value)}`);
  return result;
}

export async function openAccount(
  ledger: LedgerService,
  orgId: string,
  options: Partial<Parameters<LedgerService['createAccount']>[1]> = {},
): Promise<AccountJson> {
  return ok(await ledger.createAccount(orgId, { asset: 'USD', name: 'account', ...options })).account;
}

/** An org with USD (scale 2), a funding account without limits, and `count` wallets that cannot go negative. */
export async function seedOrg(ledger: LedgerService, count: number, options: { fund?: bigint } = {}) {
  const orgId = newId('org');
  ok(await ledger.createAsset(orgId, { code: 'USD', scale: 2 }));
  const bank = await openAccount(ledger, orgId, { name: 'bank', code: 'funding' });
  const wallets: AccountJson[] = [];
  for (let index = 0; index < count; index += 1) {
    wallets.push(
      await openAccount(ledger, orgId, { name: `wallet ${index}`, debitsMustNotExceedCredits: true }),
    );
  }
  if (options.fund !== undefined) {
    for (const wallet of wallets) {
      ok(await ledger.createTransfer(orgId, transfer(bank.id, wallet.id, options.fund, { code: 'seed' })));
    }
  }
  return { orgId, bank, wallets };
}

export function transfer(
  debitAccountId: string,
  creditAccountId: string,
  amount: bigint | number,
  extra: Partial<TransferRequest> = {},
): TransferRequest {
  return { debitAccountId, creditAccountId, asset: 'USD', amount: String(amount), ...extra };
}
