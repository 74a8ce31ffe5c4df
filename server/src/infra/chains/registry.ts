import { createPublicClient, http, type PublicClient } from 'viem';
import type { ChainRpcUrl } from '../../config.ts';

/** A JSON-RPC call that takes longer than this fails; callers decide what failing means. */
export const CHAIN_RPC_TIMEOUT_MS = 10_000;
/** Retries of a failed JSON-RPC call (viem backs off exponentially between them). */
export const CHAIN_RPC_RETRY_COUNT = 2;

/**
 * The EVM chains this Keel can read, one viem public client per chain id, built from
 * CHAIN_RPC_URLS. Every on-chain feature takes its client from here, so tests hand in anvil.
 */
export interface ChainRegistry {
  readonly chainIds: readonly number[];
  /** The client of `chainId`, or undefined when no RPC URL is configured for it. */
  client(chainId: number): PublicClient | undefined;
}

export function createChainRegistry(rpcUrls: readonly ChainRpcUrl[]): ChainRegistry {
  const clients = new Map<number, PublicClient>();
  for (const { chainId, url } of rpcUrls) {
    clients.set(
      chainId,
      createPublicClient({
        transport: http(url, { timeout: CHAIN_RPC_TIMEOUT_MS, retryCount: CHAIN_RPC_RETRY_COUNT }),
      }),
    );
  }
  return {
    chainIds: [...clients.keys()],
    client: (chainId) => clients.get(chainId),
  };
}
