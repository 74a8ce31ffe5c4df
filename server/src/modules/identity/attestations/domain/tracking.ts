/**
 * Confirmation policy and the pure decision the tracker makes about one transaction, from what
 * the chain shows of it.
 */

/** Confirmations (the including block counts as one) before an attestation counts as final. */
export const DEFAULT_CONFIRMATIONS = 12;

/**
 * Per chain id. Ethereum and its rollups reorg rarely past a few blocks; Polygon PoS has reorged
 * deeper, so it waits longer. Anvil (31337, and 31338 for a second local chain in tests) only
 * reorgs when told to, so two blocks show the tracker at work without slowing tests.
 */
export const CONFIRMATIONS_BY_CHAIN: Readonly<Record<number, number>> = {
  1: 12, // Ethereum
  10: 12, // OP Mainnet
  137: 64, // Polygon PoS
  8453: 12, // Base
  42161: 12, // Arbitrum One
  11155111: 6, // Sepolia
  84532: 6, // Base Sepolia
  31337: 2, // anvil
  31338: 2, // a second anvil
};

export function confirmationsRequired(chainId: number): number {
  return CONFIRMATIONS_BY_CHAIN[chainId] ?? DEFAULT_CONFIRMATIONS;
}

/** What the node says about a transaction hash. */
export type Observation =
  | {
      readonly kind: 'mined';
      readonly blockNumber: number;
      readonly blockHash: string;
      /** The canonical block at that height has this hash (a receipt can lag a reorg). */
      readonly canonical: boolean;
      readonly reverted: boolean;
      readonly head: number;
    }
  /** In the node's mempool, not in a block. */
  | { readonly kind: 'pending' }
  /** Unknown to the node: dropped, never received, or its block was reorged away. */
  | { readonly kind: 'unknown' };

export type Decision =
  | {
      readonly action: 'wait';
      readonly blockNumber: number | null;
      readonly blockHash: string | null;
      readonly confirmations: number;
      readonly reorged: boolean;
    }
  | {
      readonly action: 'confirm';
      readonly blockNumber: number;
      readonly blockHash: string;
      readonly confirmations: number;
      readonly reorged: boolean;
    }
  | {
      readonly action: 'fail';
      readonly blockNumber: number;
      readonly blockHash: string;
      readonly reason: string;
      readonly reorged: boolean;
    }
  /** Send the same signed bytes again (after a reorg or a lost broadcast). */
  | { readonly action: 'rebroadcast'; readonly reorged: boolean };

/**
 * `seen` is the block the transaction was last recorded in. A different block, or none, where it
 * was once seen is a reorg: the new block's confirmations start again from one.
 */
export function decide(
  seen: { readonly blockHash: string | null },
  observation: Observation,
  required: number,
): Decision {
  const wasMined = seen.blockHash !== null;
  switch (observation.kind) {
    case 'unknown':
      return { action: 'rebroadcast', reorged: wasMined };
    case 'pending':
      return { action: 'wait', blockNumber: null, blockHash: null, confirmations: 0, reorged: wasMined };
    case 'mined': {
      if (!observation.canonical) {
        // The node's receipt is from a block no longer on the canonical chain: look again soon.
        return { action: 'wait', blockNumber: null, blockHash: null, confirmations: 0, reorged: wasMined };
      }
      const reorged = wasMined && seen.blockHash !== observation.blockHash;
      const { blockNumber, blockHash } = observation;
      if (observation.reverted) {
        return { action: 'fail', blockNumber, blockHash, reason: 'the transaction reverted', reorged };
      }
      const confirmations = Math.max(0, observation.head - blockNumber + 1);
      return confirmations >= required
        ? { action: 'confirm', blockNumber, blockHash, confirmations, reorged }
        : { action: 'wait', blockNumber, blockHash, confirmations, reorged };
    }
  }
}

/** Wait before the next try after `failures` consecutive failures to reach the chain or sign. */
export function backoffMs(failures: number): number {
  const base = 5_000 * 2 ** Math.min(failures - 1, 7);
  return Math.min(base, 10 * 60 * 1000);
}
