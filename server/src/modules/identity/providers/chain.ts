import {
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  type PublicClient,
} from 'viem';
import type { ChainRegistry } from '../../../infra/chains/index.ts';
import { RetryableFailure } from './resilience.ts';

export type ContractCall<T> =
  | { readonly ok: true; readonly value: T }
  /** The contract reverted (`errorName` when the ABI names the error) or has no code there. */
  | {
      readonly ok: false;
      readonly reverted: true;
      readonly errorName: string | undefined;
      readonly raw?: string;
    };

/** The chain has no RPC URL in CHAIN_RPC_URLS: a configuration error, not a provider failure. */
export class ChainNotConfigured extends Error {
  constructor(readonly chainId: number) {
    super(`no RPC URL is configured for chain ${chainId} (CHAIN_RPC_URLS)`);
    this.name = 'ChainNotConfigured';
  }
}

export function chainClient(chains: ChainRegistry, chainId: number): PublicClient {
  const client = chains.client(chainId);
  if (!client) throw new ChainNotConfigured(chainId);
  return client;
}

/**
 * Runs one read-only contract call under `signal` (viem cannot abort a call, so the answer is
 * dropped when the signal fires first). A revert is a value; an RPC failure throws
 * RetryableFailure, so the caller's retries and circuit breaker see it.
 */
export async function readContract<T>(signal: AbortSignal, call: () => Promise<T>): Promise<ContractCall<T>> {
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return { ok: true, value: await Promise.race([call(), aborted]) };
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof BaseError) {
      const revert = error.walk((cause) => cause instanceof ContractFunctionRevertedError);
      if (revert instanceof ContractFunctionRevertedError)
        return { ok: false, reverted: true, errorName: revert.data?.errorName, raw: revert.raw };
      if (error.walk((cause) => cause instanceof ContractFunctionZeroDataError))
        return { ok: false, reverted: true, errorName: undefined };
    }
    throw new RetryableFailure('unavailable', 'rpc_unavailable', (error as Error).message.split('\n')[0]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    aborted.catch(() => {});
  }
}
