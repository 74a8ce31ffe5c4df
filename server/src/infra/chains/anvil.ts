import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The npm package that ships anvil for this platform; only linux x64 is published as one. */
export const ANVIL_PACKAGE = '@foundry-rs/anvil-linux-amd64';
/** Chain id of a local anvil unless asked otherwise (anvil's own default). */
export const ANVIL_DEFAULT_CHAIN_ID = 31337;
/** Longest wait for anvil to answer its first JSON-RPC call. */
export const ANVIL_START_TIMEOUT_MS = 15_000;
const ANVIL_POLL_INTERVAL_MS = 50;

/**
 * The funded accounts anvil creates from its default mnemonic ("test test … junk"): public
 * test keys, never to hold anything of value.
 */
export const ANVIL_DEV_PRIVATE_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
] as const;

export interface Anvil {
  readonly url: string;
  readonly chainId: number;
  readonly port: number;
  stop(): Promise<void>;
}

/** The anvil binary from the npm package, or undefined when this platform has none installed. */
export function anvilBinary(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  try {
    const manifest = fileURLToPath(import.meta.resolve(`${ANVIL_PACKAGE}/package.json`));
    const binary = path.join(path.dirname(manifest), 'bin', 'anvil');
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/** Why anvil cannot run here, for tests to skip with; false when it can. */
export function anvilUnavailable(): string | false {
  return anvilBinary()
    ? false
    : `no anvil binary: ${ANVIL_PACKAGE} installs only on linux x64 (this is ${process.platform} ${process.arch})`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

async function answersChainId(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    });
    const body = (await response.json()) as { result?: string };
    return body.result ? Number(body.result) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs a local anvil on 127.0.0.1 and a free port, for tests and `--dev-chain`. Resolves once it
 * answers JSON-RPC with the requested chain id; `stop()` ends the process.
 */
export async function startAnvil(options: { chainId?: number; port?: number } = {}): Promise<Anvil> {
  const binary = anvilBinary();
  if (!binary) throw new Error(anvilUnavailable() || 'anvil is unavailable');
  const chainId = options.chainId ?? ANVIL_DEFAULT_CHAIN_ID;
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    binary,
    ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--quiet'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  const deadline = Date.now() + ANVIL_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode}: ${stderr.trim()}`);
    const answered = await answersChainId(url);
    if (answered === chainId) return { url, chainId, port, stop };
    await new Promise((resolve) => setTimeout(resolve, ANVIL_POLL_INTERVAL_MS));
  }
  await stop();
  throw new Error(`anvil did not answer on ${url} within ${ANVIL_START_TIMEOUT_MS} ms: ${stderr.trim()}`);
}
