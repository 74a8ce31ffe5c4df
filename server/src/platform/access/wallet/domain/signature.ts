import { type Hex, isAddressEqual, recoverMessageAddress } from 'viem';
import type { ChainRegistry } from '../../../../infra/chains/index.ts';
import type { SiweFields } from './siwe.ts';

export type SignatureCheck =
  | { ok: true; kind: 'eoa' | 'contract' }
  | {
      ok: false;
      code: 'WALLET_SIGNATURE_INVALID' | 'WALLET_CHAIN_UNSUPPORTED' | 'CHAIN_UNAVAILABLE';
      detail: string;
    };

/**
 * Checks the signature of a SIWE message. An EOA's signature is checked offline (ecrecover),
 * which holds on every chain. Anything else is a smart-contract account and is checked on its
 * chain through viem's verifySiweMessage: ERC-1271 `isValidSignature` for a deployed contract,
 * ERC-6492 for one not deployed yet. That needs an RPC URL for the message's chain id.
 */
export async function verifySiweSignature(options: {
  message: string;
  signature: Hex;
  fields: SiweFields;
  chains: ChainRegistry;
}): Promise<SignatureCheck> {
  const { message, signature, fields } = options;
  try {
    const recovered = await recoverMessageAddress({ message, signature });
    if (isAddressEqual(recovered, fields.address)) return { ok: true, kind: 'eoa' };
  } catch {
    // Not a plain 65-byte ECDSA signature (ERC-6492 wraps one): try the chain.
  }
  const client = options.chains.client(fields.chainId);
  if (!client) {
    return {
      ok: false,
      code: 'WALLET_CHAIN_UNSUPPORTED',
      detail: `the signature is not the address's own (EOA) signature, and chain ${fields.chainId} has no RPC URL configured to check a smart-contract wallet`,
    };
  }
  let valid: boolean;
  try {
    valid = await client.verifySiweMessage({
      message,
      signature,
      address: fields.address,
      domain: fields.domain,
      nonce: fields.nonce,
      time: fields.checkedAt,
    });
  } catch (error) {
    return {
      ok: false,
      code: 'CHAIN_UNAVAILABLE',
      detail: `could not check the signature on chain ${fields.chainId}: ${(error as Error).message.split('\n')[0]}`,
    };
  }
  return valid
    ? { ok: true, kind: 'contract' }
    : { ok: false, code: 'WALLET_SIGNATURE_INVALID', detail: 'the signature does not match the address' };
}
