// `keel contracts deploy` as an operator runs it: a real child process against a real anvil,
// recording the registry where attestations find it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPublicClient, type Hex, http } from 'viem';
import { createTestDatabase, type TestDatabase } from '../../../../test/harness.ts';
import { keelEnv, runKeel, tempDir } from '../../../../test/process.ts';
import {
  ANVIL_DEV_PRIVATE_KEYS,
  type Anvil,
  anvilUnavailable,
  startAnvil,
} from '../../../infra/chains/index.ts';
import { createDatabase } from '../../../infra/db/database.ts';
import { createLogger } from '../../../infra/observability/logger.ts';
import { compileContract, REGISTRY_ABI, REGISTRY_NAME, REGISTRY_SOURCE } from './contract.ts';
import { findContract } from './store.ts';

/** Exit status of `keel` for bad usage or configuration. */
const EXIT_USAGE = 2;
const CHAIN_ID = 31337;

describe('keel contracts deploy', { skip: anvilUnavailable(), concurrency: false }, () => {
  let database: TestDatabase;
  let anvil: Anvil;
  let cwd: string;

  before(async () => {
    database = await createTestDatabase();
    anvil = await startAnvil({ chainId: CHAIN_ID });
    cwd = await tempDir('keel-contracts-');
  });
  after(async () => {
    await anvil?.stop();
    await database?.drop();
  });

  const env = (overrides: Record<string, string | undefined> = {}) =>
    keelEnv({
      DATABASE_URL: database.url,
      CHAIN_RPC_URLS: `${CHAIN_ID}=${anvil.url}`,
      KEEL_DEPLOYER_PRIVATE_KEY: ANVIL_DEV_PRIVATE_KEYS[2],
      LOG_LEVEL: 'warn',
      ...overrides,
    });

  async function recorded() {
    const db = createDatabase({
      url: database.url,
      poolSize: 1,
      log: createLogger({ level: 'silent', pretty: false }),
    });
    try {
      return await findContract(db.db, CHAIN_ID, REGISTRY_NAME);
    } finally {
      await db.close();
    }
  }

  test('deploys the registry on the chain, prints its address and records it', async () => {
    const result = await runKeel(['contracts', 'deploy', '--chain', String(CHAIN_ID)], { cwd, env: env() });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const match =
      /KeelAttestationRegistry deployed on chain 31337 at (0x[0-9a-fA-F]{40}) \(transaction (0x[0-9a-f]{64})\)/.exec(
        result.stdout,
      );
    assert.ok(match, result.stdout);
    const row = await recorded();
    assert.equal(row?.address, match[1]);
    assert.equal(row?.tx_hash, match[2]);
    const client = createPublicClient({ transport: http(anvil.url) });
    assert.ok(await client.getCode({ address: match[1] as Hex }), 'the contract has code');
    assert.equal(
      await client.readContract({
        address: match[1] as Hex,
        abi: REGISTRY_ABI,
        functionName: 'isValid',
        args: [match[1] as Hex, `0x${'11'.repeat(32)}`],
      }),
      false,
    );
  });

  test('running it again keeps the deployment that is still on chain', async () => {
    const before = await recorded();
    const result = await runKeel(['contracts', 'deploy', '--chain', String(CHAIN_ID)], { cwd, env: env() });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`already deployed on chain 31337 at ${before!.address}`));
    assert.deepEqual(await recorded(), before);
  });

  // One spawn per test: each `keel` child loads the server through tsx, slow on a busy machine.
  const refusals: [string, string[], Record<string, string | undefined>, RegExp][] = [
    ['without --chain', ['contracts', 'deploy'], {}, /--chain <id> is required/],
    [
      'for a chain without an RPC URL',
      ['contracts', 'deploy', '--chain', '8453'],
      {},
      /chain 8453 has no RPC URL/,
    ],
    [
      'without a deployer key',
      ['contracts', 'deploy', '--chain', String(CHAIN_ID)],
      { KEEL_DEPLOYER_PRIVATE_KEY: undefined },
      /KEEL_DEPLOYER_PRIVATE_KEY is not set/,
    ],
  ];
  for (const [when, args, overrides, message] of refusals) {
    test(`refuses to run ${when} (exit 2)`, async () => {
      const result = await runKeel(args, { cwd, env: env(overrides) });
      assert.equal(result.code, EXIT_USAGE, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    });
  }

  test('the ABI the server calls is the compiled contract’s', async () => {
    const compiled = await compileContract(REGISTRY_SOURCE, REGISTRY_NAME);
    // Names, types, tuple shapes, indexing and mutability; not Solidity's internal type names.
    type Param = { type: string; indexed?: boolean; components?: Param[] };
    const shape = (param: Param): unknown => ({
      type: param.type,
      indexed: param.indexed ?? false,
      components: param.components?.map(shape) ?? null,
    });
    const signatures = (abi: readonly unknown[]) =>
      abi
        .map((raw) => {
          const item = raw as {
            type: string;
            name?: string;
            inputs?: Param[];
            outputs?: Param[];
            stateMutability?: string;
          };
          return JSON.stringify([
            item.type,
            item.name,
            (item.inputs ?? []).map(shape),
            (item.outputs ?? []).map(shape),
            item.stateMutability ?? null,
          ]);
        })
        .sort();
    assert.deepEqual(signatures(REGISTRY_ABI), signatures(compiled.abi));
  });
});
