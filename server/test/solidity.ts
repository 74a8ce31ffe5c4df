import { readFileSync } from 'node:fs';
import path from 'node:path';
import solc from 'solc';
import type { Abi, Hex } from 'viem';

/** The repository's Solidity sources (`contracts/`). */
export const CONTRACTS_DIR = path.resolve(import.meta.dirname, '../../contracts');

export interface CompiledContract {
  readonly abi: Abi;
  readonly bytecode: Hex;
}

const compiled = new Map<string, Record<string, CompiledContract>>();

/**
 * Compiles one source file under `contracts/` with solc-js (the compiler ships inside the npm
 * package, so nothing is downloaded) and returns its contracts by name. Tests compile what they
 * deploy instead of committing build artifacts; results are cached per process.
 */
export function compileContracts(relativePath: string): Record<string, CompiledContract> {
  const cached = compiled.get(relativePath);
  if (cached) return cached;
  const input = {
    language: 'Solidity',
    sources: { [relativePath]: { content: readFileSync(path.join(CONTRACTS_DIR, relativePath), 'utf8') } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((error) => error.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`solc failed on ${relativePath}:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }
  const contracts: Record<string, CompiledContract> = {};
  for (const [name, contract] of Object.entries(output.contracts[relativePath] ?? {})) {
    contracts[name] = { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
  }
  compiled.set(relativePath, contracts);
  return contracts;
}
