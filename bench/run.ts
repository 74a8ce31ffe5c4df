// `npm run bench -- NAME` runs bench/NAME.ts: progress lines first, then, as the last line on
// stdout, one JSON object {bench, metric, value, unit, baseline, ratio, p50_ms, p99_ms}.
import { readdirSync } from 'node:fs';
import { ensureBuilt } from '../server/bin/build.js';
import { type BenchResult, stopAllServers } from './lib.ts';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
/** Files of bench/ that are not benchmarks: this runner, helpers (`lib.ts`, `*-lib.ts`), tests, scratch (`_*`). */
const isBench = (file: string) =>
  file.endsWith('.ts') &&
  !['run.ts', 'lib.ts'].includes(file) &&
  !file.endsWith('-lib.ts') &&
  !file.endsWith('.test.ts') &&
  !file.startsWith('_');

function available(): string[] {
  return readdirSync(import.meta.dirname)
    .filter(isBench)
    .map((file) => file.slice(0, -'.ts'.length))
    .sort();
}

const exit = (code: number) => new Promise<never>(() => process.stdout.write('', () => process.exit(code)));

const name = process.argv[2];
const benches = available();
if (!name || !benches.includes(name)) {
  process.stderr.write(
    `${name ? `unknown bench "${name}"` : 'no bench named'}\n` +
      `usage: npm run bench -- NAME\navailable: ${benches.join(', ')}\n`,
  );
  await exit(EXIT_USAGE);
}

let result: BenchResult;
try {
  // Benches measure the compiled server: compile it now if it is stale, not in a measured start.
  await ensureBuilt();
  const module = (await import(`./${name}.ts`)) as { run?: () => Promise<BenchResult> };
  if (typeof module.run !== 'function') throw new Error(`bench/${name}.ts exports no run()`);
  result = await module.run();
} catch (error) {
  process.stderr.write(`bench ${name} failed: ${(error as Error).stack ?? String(error)}\n`);
  await stopAllServers();
  await exit(EXIT_FAILURE);
  throw error;
}
await stopAllServers();
process.stdout.write(`${JSON.stringify(result)}\n`);
await exit(0);
