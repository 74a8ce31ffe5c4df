// npm run bench -- ledger: uniform transfers over 10,000 accounts, 64 concurrent clients, against
// the same-run baseline of one PostgreSQL transaction per transfer (see ledger-lib.ts).
import { pathToFileURL } from 'node:url';
import { runLedgerBench } from './ledger-lib.ts';
import type { BenchResult } from './lib.ts';

/** Accounts the transfers pick from at random: contention is rare. */
export const UNIFORM_ACCOUNTS = 10_000;

export function run(): Promise<BenchResult> {
  return runLedgerBench({ name: 'ledger', accounts: UNIFORM_ACCOUNTS });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await run())}\n`);
}
