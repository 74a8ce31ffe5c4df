import { getAddress, type Hex } from 'viem';
import type { ChainRegistry } from '../../../infra/chains/index.ts';
import { ChainNotConfigured, chainClient, readContract } from './chain.ts';
import { RetryableFailure } from './resilience.ts';
import {
  type AddressInput,
  type Finding,
  finding,
  type PohChain,
  type ProofOfHumanitySettings,
  type ProviderAdapter,
} from './types.ts';

const ZERO_HUMANITY = '0x0000000000000000000000000000000000000000';

export const POH_V1_ABI = [
  {
    type: 'function',
    name: 'isRegistered',
    stateMutability: 'view',
    inputs: [{ name: '_submissionID', type: 'address' }],
    outputs: [{ type: 'bool' }],
  },
] as const;

export const POH_V2_ABI = [
  {
    type: 'function',
    name: 'isHuman',
    stateMutability: 'view',
    inputs: [{ name: '_account', type: 'address' }],
    outputs: [{ type: 'bool' }],
  },
  {
    type: 'function',
    name: 'humanityOf',
    stateMutability: 'view',
    inputs: [{ name: '_account', type: 'address' }],
    outputs: [{ name: 'humanityId', type: 'bytes20' }],
  },
  {
    type: 'function',
    name: 'boundTo',
    stateMutability: 'view',
    inputs: [{ name: '_humanityId', type: 'bytes20' }],
    outputs: [{ type: 'address' }],
  },
  {
    type: 'function',
    name: 'humanityData',
    stateMutability: 'view',
    inputs: [{ name: '_humanityId', type: 'bytes20' }],
    outputs: [
      {
        type: 'tuple',
        components: [
          { name: 'owner', type: 'address' },
          { name: 'expirationTime', type: 'uint40' },
          { name: 'lastTransferTime', type: 'uint40' },
          { name: 'isHomeChain', type: 'bool' },
        ],
      },
    ],
  },
] as const;

interface ChainAnswer {
  readonly chain: PohChain;
  readonly human: boolean;
  readonly humanityId: string | null;
  readonly expiresAt: Date | null;
  readonly isHomeChain: boolean | null;
  readonly error?: string;
}

/**
 * Proof of Humanity on every configured chain, read by eth_call (docs/identity.md#proof-of-humanity).
 * - v1 (`ProofOfHumanity`): `isRegistered(address)`. Its humanity id is the address as bytes20,
 *   which is also the id v2 gives a profile migrated from v1, so both versions bind one human.
 * - v2: `isHuman(address)` and `humanityOf(address) → bytes20`.
 * - v2 cross-chain (`CrossChainProofOfHumanity`): also `humanityData(bytes20) → (owner,
 *   expirationTime, lastTransferTime, isHomeChain)`; the expiration becomes the evidence's
 *   provider expiry.
 * Chains are asked in parallel: `passed` when any says human (the identifier is the humanity id,
 * with every chain that said so); `failed: not_registered` when all that answered said no; a
 * revert (wrong address, not a PoH contract) → `error: contract_call_failed`; a chain without an
 * RPC URL → `error: chain_not_configured`. RPC failures on every chain are retried, then
 * `unavailable`.
 *
 * Matches PROTOCOLS.md; `humanityData` returns a struct, whose ABI encoding is the same as the
 * four-value tuple PROTOCOLS.md lists (checked against Proof-Of-Humanity/proof-of-humanity-v2-contracts'
 * ICrossChainProofOfHumanity).
 */
export function createProofOfHumanityAdapter(deps: {
  chains: ChainRegistry;
}): ProviderAdapter<ProofOfHumanitySettings, AddressInput> {
  async function ask(signal: AbortSignal, chain: PohChain, address: Hex): Promise<ChainAnswer> {
    const client = chainClient(deps.chains, chain.chainId);
    const contract = chain.address as Hex;
    if (chain.version === 'v1') {
      const call = await readContract(signal, () =>
        client.readContract({
          address: contract,
          abi: POH_V1_ABI,
          functionName: 'isRegistered',
          args: [address],
        }),
      );
      if (!call.ok)
        return { chain, human: false, humanityId: null, expiresAt: null, isHomeChain: null, error: 'revert' };
      return {
        chain,
        human: call.value,
        humanityId: call.value ? address.toLowerCase() : null,
        expiresAt: null,
        isHomeChain: null,
      };
    }
    const [human, humanityOf] = await Promise.all([
      readContract(signal, () =>
        client.readContract({ address: contract, abi: POH_V2_ABI, functionName: 'isHuman', args: [address] }),
      ),
      readContract(signal, () =>
        client.readContract({
          address: contract,
          abi: POH_V2_ABI,
          functionName: 'humanityOf',
          args: [address],
        }),
      ),
    ]);
    if (!human.ok || !humanityOf.ok)
      return { chain, human: false, humanityId: null, expiresAt: null, isHomeChain: null, error: 'revert' };
    const humanityId =
      humanityOf.value.toLowerCase() === ZERO_HUMANITY ? null : humanityOf.value.toLowerCase();
    if (chain.version !== 'v2_cross_chain' || !humanityId || !human.value)
      return { chain, human: human.value, humanityId, expiresAt: null, isHomeChain: null };
    const data = await readContract(signal, () =>
      client.readContract({
        address: contract,
        abi: POH_V2_ABI,
        functionName: 'humanityData',
        args: [humanityId as Hex],
      }),
    );
    if (!data.ok) return { chain, human: human.value, humanityId, expiresAt: null, isHomeChain: null };
    return {
      chain,
      human: human.value,
      humanityId,
      expiresAt: data.value.expirationTime > 0 ? new Date(data.value.expirationTime * 1000) : null,
      isHomeChain: data.value.isHomeChain,
    };
  }

  return {
    name: 'proof_of_humanity',
    cacheKey: (input) => input.address.toLowerCase(),
    async check(context, input): Promise<Finding> {
      const now = context.now();
      const address = getAddress(input.address);
      const chains = context.config.settings.chains;
      const settled = await Promise.allSettled(chains.map((chain) => ask(context.signal, chain, address)));
      const answers: ChainAnswer[] = [];
      let retryable: RetryableFailure | undefined;
      for (const [index, result] of settled.entries()) {
        if (result.status === 'fulfilled') answers.push(result.value);
        else if (result.reason instanceof ChainNotConfigured)
          return finding(now, {
            outcome: 'error',
            errorCode: 'chain_not_configured',
            chainId: chains[index]!.chainId,
            detail: { message: result.reason.message },
          });
        else if (result.reason instanceof RetryableFailure) retryable = result.reason;
        else throw result.reason;
      }
      const perChain = answers.map((answer) => ({
        chainId: answer.chain.chainId,
        version: answer.chain.version,
        human: answer.human,
        humanityId: answer.humanityId,
        ...(answer.isHomeChain === null ? {} : { isHomeChain: answer.isHomeChain }),
        ...(answer.error ? { error: answer.error } : {}),
      }));
      const humans = answers.filter((answer) => answer.human && answer.humanityId);
      if (humans.length > 0) {
        const first = humans[0]!;
        const sameHuman = humans.filter((answer) => answer.humanityId === first.humanityId);
        const expiries = sameHuman
          .map((answer) => answer.expiresAt)
          .filter((date): date is Date => date !== null);
        return finding(now, {
          outcome: 'passed',
          identifier: first.humanityId,
          chainId: first.chain.chainId,
          chainIds: sameHuman.map((answer) => answer.chain.chainId),
          providerExpiresAt:
            expiries.length > 0 ? new Date(Math.max(...expiries.map((date) => date.getTime()))) : null,
          detail: { chains: perChain },
        });
      }
      // No chain said human: a chain we could not reach might have, so that is not a "no".
      if (retryable) throw retryable;
      if (answers.length > 0 && answers.every((answer) => answer.error))
        return finding(now, {
          outcome: 'error',
          errorCode: 'contract_call_failed',
          detail: { chains: perChain },
        });
      return finding(now, { outcome: 'failed', errorCode: 'not_registered', detail: { chains: perChain } });
    },
  };
}
