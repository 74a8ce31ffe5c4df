import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Hex, parseAbi } from 'viem';

/** The name a deployment of the registry is recorded under in `chain_contracts`. */
export const REGISTRY_NAME = 'KeelAttestationRegistry';
/** Its Solidity source, relative to the repository's `contracts/` folder. */
export const REGISTRY_SOURCE = 'identity/KeelAttestationRegistry.sol';
export const CONTRACTS_DIR = fileURLToPath(new URL('../../../../../contracts/', import.meta.url));

/** The registry's interface, as viem reads it; a test checks it against the compiled ABI. */
export const REGISTRY_ABI = parseAbi([
  'function attest(bytes32 commitment, uint64 expiresAt)',
  'function revoke(bytes32 commitment)',
  'function isValid(address attester, bytes32 commitment) view returns (bool)',
  'function attestationOf(address attester, bytes32 commitment) view returns ((uint64 attestedAt, uint64 expiresAt, uint64 revokedAt))',
  'event Attested(address indexed attester, bytes32 indexed commitment, uint64 expiresAt)',
  'event Revoked(address indexed attester, bytes32 indexed commitment)',
  'error ZeroCommitment()',
  'error ExpiryInPast(uint64 expiresAt)',
  'error AlreadyAttested(address attester, bytes32 commitment)',
  'error NotAttested(address attester, bytes32 commitment)',
  'error AlreadyRevoked(address attester, bytes32 commitment)',
]);

export interface CompiledContract {
  readonly abi: unknown[];
  readonly bytecode: Hex;
  readonly compilerVersion: string;
}

/**
 * Compiles one of Keel's contracts with solc-js (the compiler ships in the npm package: nothing
 * is downloaded), with the same settings every time, so a deployment is reproducible from the
 * source. solc is loaded only here: the server never needs it.
 */
export async function compileContract(source: string, name: string): Promise<CompiledContract> {
  const { default: solc } = await import('solc');
  const input = {
    language: 'Solidity',
    sources: { [source]: { content: readFileSync(path.join(CONTRACTS_DIR, source), 'utf8') } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((error) => error.severity === 'error');
  if (errors.length > 0)
    throw new Error(`solc failed on ${source}:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const contract = output.contracts?.[source]?.[name];
  if (!contract) throw new Error(`${source} has no contract ${name}`);
  return {
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
    compilerVersion: solc.version(),
  };
}
