// npm run bench -- ledger-hot: every transfer touches 2 of 10 hot accounts, 64 concurrent clients,
// against the same-run baseline of one PostgreSQL transaction per transfer (see ledger-lib.ts).
import { pathToFileURL } from 'node:url';
import { runLedgerBench } from './ledger-lib.ts';
import type { BenchResult } from './lib.ts';

/** The hot accounts: every transfer contends with most others for their row locks. */
export const HOT_ACCOUNTS = 10;

export function run(): Promise<BenchResult> {
  return runLedgerBench({ name: 'ledger-hot', accounts: HOT_ACCOUNTS });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await run())}\n`);
}
