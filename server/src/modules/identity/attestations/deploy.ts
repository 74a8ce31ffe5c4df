import { createPublicClient, createWalletClient, type Hex, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { Clock } from '../../../infra/clock.ts';
import type { Db } from '../../../infra/db/database.ts';
import { compileContract, REGISTRY_NAME, REGISTRY_SOURCE } from './contract.ts';
import { findContract, recordContract } from './store.ts';

/** The contracts `keel contracts deploy` deploys on a chain, by recorded name. */
export const DEPLOYABLE_CONTRACTS = [{ name: REGISTRY_NAME, source: REGISTRY_SOURCE }] as const;
/** Longest wait for a deployment's receipt. */
export const DEPLOY_RECEIPT_TIMEOUT_MS = 180_000;

export interface Deployment {
  readonly name: string;
  readonly chainId: number;
  readonly address: Hex;
  readonly txHash: Hex;
  /** False when a recorded deployment still has its code on chain, so nothing was sent. */
  readonly deployed: boolean;
}

/**
 * Deploys Keel's contracts on one chain, paid by the deployer key, and records each address in
 * `chain_contracts`. Idempotent: a contract already recorded whose code is still on chain is kept;
 * one whose code is gone (a reset devnet) is deployed again.
 */
export async function deployContracts(options: {
  db: Db;
  clock: Clock;
  chainId: number;
  rpcUrl: string;
  deployerPrivateKey: Hex;
}): Promise<Deployment[]> {
  const { db, chainId } = options;
  const transport = http(options.rpcUrl, { timeout: 30_000, retryCount: 2 });
  const client = createPublicClient({ transport });
  const actual = await client.getChainId();
  if (actual !== chainId) throw new Error(`the RPC URL of chain ${chainId} serves chain ${actual}`);
  const account = privateKeyToAccount(options.deployerPrivateKey);
  const wallet = createWalletClient({ account, transport });
  const deployments: Deployment[] = [];
  for (const { name, source } of DEPLOYABLE_CONTRACTS) {
    const recorded = await findContract(db, chainId, name);
    if (recorded && (await client.getCode({ address: recorded.address as Hex }))) {
      deployments.push({
        name,
        chainId,
        address: recorded.address as Hex,
        txHash: recorded.tx_hash as Hex,
        deployed: false,
      });
      continue;
    }
    const compiled = await compileContract(source, name);
    const txHash = await wallet.deployContract({
      abi: compiled.abi,
      bytecode: compiled.bytecode,
      chain: null,
    });
    const receipt = await client.waitForTransactionReceipt({
      hash: txHash,
      timeout: DEPLOY_RECEIPT_TIMEOUT_MS,
    });
    if (receipt.status !== 'success' || !receipt.contractAddress) {
      throw new Error(`deploying ${name} on chain ${chainId} failed (transaction ${txHash})`);
    }
    await recordContract(db, {
      chain_id: chainId,
      name,
      address: receipt.contractAddress,
      tx_hash: txHash,
      deployer: account.address,
      deployed_at: options.clock.now(),
    });
    deployments.push({ name, chainId, address: receipt.contractAddress, txHash, deployed: true });
  }
  return deployments;
}
