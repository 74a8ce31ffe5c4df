// Personhood verification: verifications/s and latency of POST /v1/verifications through HTTP to
// a `keel start --role api` process, with all four providers configured and the default policy.
//
// The four providers are stand-ins in a process of their own, each answering in a fixed 20 ms:
// World ID cloud verify, Human Passport and BrightID over HTTP, and Proof of Humanity v2 through
// a JSON-RPC node that answers eth_call (anvil would answer in ~1 ms, so it would not be a fair
// fourth provider). Every verification asks all four in parallel (PoH: isHuman and humanityOf).
//
// Phases:
//   1. miss: 200 concurrent verifications, each of a new account with a new World ID proof, so no
//      provider answer is cached: verifications/s, p50, p99 (the goal: p99 < 100 ms);
//   2. one at a time: 200 new verifications, then the same 200 again (cache hits), with no
//      queueing: the latency of one verification;
//   3. hit: earlier requests again within the cache TTL, at 20 and at 200 concurrent: every
//      provider answers from the cache (Redis when REDIS_URL is set, else Keel's memory store);
//      p50, p99 (the goal: p99 < 10 ms).
// Baseline, same run: this process calls the four stand-ins directly, in parallel, at the same
// concurrency: the floor a verification cannot beat (~20 ms). Rounds alternate baseline and miss
// phases; the medians are reported.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { encodeAbiParameters, encodeFunctionData, type Hex, toHex } from 'viem';
import { POH_V2_ABI } from '../server/src/modules/identity/providers/proof-of-humanity.ts';
import { hashToField } from '../server/src/modules/identity/providers/world-id.ts';
import {
  BENCH_ACTION,
  BENCH_APP_ID,
  BENCH_BRIGHTID_APP,
  BENCH_PASSPORT_KEY,
  BENCH_SCORER_ID,
} from '../server/src/modules/identity/testing/bench-setup.ts';
import {
  type BenchResult,
  benchDatabase,
  freePort,
  KEEL_BIN,
  keelEnvironment,
  median,
  percentile,
  progress,
  REPO_ROOT,
  round,
  roundOrder,
  type ServerProcess,
  spawnServer,
} from './lib.ts';

/** Verifications in flight at once in the miss phase (the goal's 200). */
export const CONCURRENCY = 200;
/** Verifications per measured round. */
export const ROUND_VERIFICATIONS = 2_000;
export const ROUNDS = 3;
export const WARMUP_VERIFICATIONS = 600;
/** Cache hits in flight at once; see the note printed with the result. */
export const HIT_CONCURRENCY = Number(process.env.BENCH_VERIFY_HIT_CONCURRENCY ?? 20);
export const HIT_VERIFICATIONS = 2_000;
/** Verifications made one at a time, for the latency without queueing. */
export const SINGLE_VERIFICATIONS = 200;
const STAND_IN_DELAY_MS = 20;
const POH_CHAIN_ID = 31_337;
const POH_REGISTRY = '0x0000000000000000000000000000000000000bee';
const UNLIMITED = '1000000000';

interface StandIns {
  readonly worldId: string;
  readonly passport: string;
  readonly brightId: string;
  readonly brightIdNodeKey: string;
  readonly proofOfHumanityRpc: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

function request(
  url: string,
  options: { method: 'GET' | 'POST' | 'PUT'; headers?: Record<string, string>; body?: unknown },
): Promise<{ status: number; body: string }> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method,
        agent,
        headers: {
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function json(url: string, options: Parameters<typeof request>[1], expect: number[] = [200, 201]) {
  const response = await request(url, options);
  if (!expect.includes(response.status))
    throw new Error(`${options.method} ${url}: ${response.status} ${response.body}`);
  return JSON.parse(response.body) as Record<string, unknown>;
}

async function startStandIns(): Promise<{ urls: StandIns; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'server/src/modules/identity/testing/stand-ins-process.ts')],
    {
      env: { ...process.env, STAND_IN_DELAY_MS: String(STAND_IN_DELAY_MS) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`stand-ins exited with ${code}`)));
  });
  return {
    urls: JSON.parse(line) as StandIns,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One verification's inputs: a new account and a new World ID proof for number `n`. */
function inputs(n: number) {
  const account = toHex(0xbe0c4000000000n + BigInt(n), { size: 20 });
  return {
    account,
    worldId: {
      proof: encodeAbiParameters([{ type: 'uint256[8]' }], [[1n, 2n, 3n, 4n, 5n, 6n, 7n, BigInt(n)]]),
      merkleRoot: '0x2a',
      nullifierHash: toHex(0xf00d0000n + BigInt(n)),
      verificationLevel: 'orb',
      signal: account,
    },
  };
}

interface Phase {
  readonly perSecond: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly count: number;
}

/** Runs `count` operations, `concurrency` at a time; each must resolve true. */
async function phase(
  count: number,
  concurrency: number,
  operation: (index: number) => Promise<boolean>,
): Promise<Phase> {
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        const begin = performance.now();
        if (!(await operation(index))) failures += 1;
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  if (failures > 0) throw new Error(`${failures} of ${count} operations failed`);
  return {
    perSecond: count / seconds,
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    count,
  };
}

/** The floor: one verification's provider calls, made directly and in parallel. */
function directCalls(urls: StandIns, n: number): Promise<boolean> {
  const { account, worldId } = inputs(n);
  const rpc = (data: Hex) =>
    request(urls.proofOfHumanityRpc, {
      method: 'POST',
      body: { jsonrpc: '2.0', id: n, method: 'eth_call', params: [{ to: POH_REGISTRY, data }, 'latest'] },
    });
  return Promise.all([
    request(`${urls.worldId}/api/v2/verify/${BENCH_APP_ID}`, {
      method: 'POST',
      body: {
        nullifier_hash: worldId.nullifierHash,
        merkle_root: worldId.merkleRoot,
        proof: worldId.proof,
        verification_level: 'orb',
        action: BENCH_ACTION,
        signal_hash: hashToField(account),
      },
    }),
    request(`${urls.passport}/v2/stamps/${BENCH_SCORER_ID}/score/${account}`, {
      method: 'GET',
      headers: { 'X-API-KEY': BENCH_PASSPORT_KEY },
    }),
    request(`${urls.brightId}/verifications/${BENCH_BRIGHTID_APP}/${account}?signed=nacl&timestamp=seconds`, {
      method: 'GET',
    }),
    rpc(encodeFunctionData({ abi: POH_V2_ABI, functionName: 'isHuman', args: [account] })),
    rpc(encodeFunctionData({ abi: POH_V2_ABI, functionName: 'humanityOf', args: [account] })),
  ]).then((answers) => answers.every((answer) => answer.status === 200));
}

const describe = (result: Phase, unit: string) =>
  `${Math.round(result.perSecond)} ${unit}, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms (${result.count})`;

export async function run(): Promise<BenchResult> {
  const database = await benchDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-verify-'));
  const standIns = await startStandIns();
  let keel: ServerProcess | undefined;
  try {
    const { urls } = standIns;
    progress(`database: ${database.description}; stand-ins answer in ${STAND_IN_DELAY_MS} ms`);
    const port = await freePort();
    keel = await spawnServer({
      name: 'keel',
      args: [KEEL_BIN, 'start', '--role', 'api'],
      env: await keelEnvironment({
        DATABASE_URL: database.url,
        REDIS_URL: process.env.REDIS_URL ?? '',
        KEEL_DATA_DIR: dataDir,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        SSRF_ALLOWLIST: '127.0.0.1',
        CHAIN_RPC_URLS: `${POH_CHAIN_ID}=${urls.proofOfHumanityRpc}`,
        KEEL_RATE_LIMIT_IP_PER_MINUTE: UNLIMITED,
        KEEL_RATE_LIMIT_KEY_PER_MINUTE: UNLIMITED,
        KEEL_RATE_LIMIT_ORG_PER_MINUTE: UNLIMITED,
      }),
      port,
      readyPath: '/health/ready',
      stdout: 'discard',
    });
    progress(`keel --role api on ${keel.url} (cache: ${process.env.REDIS_URL ? 'Redis' : 'memory'})`);

    // An org, a key with identity:write, and the four providers.
    const signedUp = await json(`${keel.url}/v1/auth/signup`, {
      method: 'POST',
      body: { email: `bench-${randomBytes(4).toString('hex')}@example.com`, password: 'bench password 123' },
    });
    const created = await json(`${keel.url}/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${signedUp.token as string}` },
      body: { name: 'bench', scopes: ['identity:read', 'identity:write'] },
    });
    const headers = { authorization: `Bearer ${created.secret as string}` };
    const configure = (provider: string, body: unknown) =>
      json(`${keel!.url}/v1/identity/providers/${provider}`, { method: 'PUT', headers, body });
    await configure('world_id', { baseUrl: urls.worldId, appId: BENCH_APP_ID, action: BENCH_ACTION });
    await configure('passport', {
      baseUrl: urls.passport,
      apiKey: BENCH_PASSPORT_KEY,
      scorerId: BENCH_SCORER_ID,
    });
    await configure('brightid', {
      baseUrl: urls.brightId,
      app: BENCH_BRIGHTID_APP,
      nodePublicKey: urls.brightIdNodeKey,
    });
    await configure('proof_of_humanity', {
      chains: [{ chainId: POH_CHAIN_ID, address: POH_REGISTRY, version: 'v2' }],
    });

    let counter = 0;
    const verify = async (n: number) => {
      const response = await request(`${keel!.url}/v1/verifications`, {
        method: 'POST',
        headers,
        body: inputs(n),
      });
      if (response.status !== 201) {
        progress(`verification ${n}: ${response.status} ${response.body.slice(0, 300)}`);
        return false;
      }
      const verification = JSON.parse(response.body) as { outcome: string; evidence: { outcome: string }[] };
      return (
        verification.outcome === 'verified' && verification.evidence.every((e) => e.outcome === 'passed')
      );
    };
    const missRound = () => {
      const base = counter;
      counter += ROUND_VERIFICATIONS;
      return phase(ROUND_VERIFICATIONS, CONCURRENCY, (index) => verify(base + index));
    };
    const baselineRound = () => {
      const base = counter;
      counter += ROUND_VERIFICATIONS;
      return phase(ROUND_VERIFICATIONS, CONCURRENCY, (index) => directCalls(urls, base + index));
    };

    const warm = await phase(WARMUP_VERIFICATIONS, CONCURRENCY, (index) => verify(index));
    counter = WARMUP_VERIFICATIONS;
    progress(`warm-up: ${describe(warm, 'verifications/s')}`);
    const results: Record<'baseline' | 'measured', Phase[]> = { baseline: [], measured: [] };
    for (const [index, order] of roundOrder(ROUNDS).entries()) {
      for (const role of order) {
        const result = role === 'baseline' ? await baselineRound() : await missRound();
        results[role].push(result);
        progress(
          `round ${index + 1} ${role === 'baseline' ? 'direct ' : 'keel   '}: ${describe(result, 'verifications/s')}`,
        );
      }
    }
    // One at a time: the latency of a single verification without queueing, miss then hit.
    const single = counter;
    counter += SINGLE_VERIFICATIONS;
    const missAlone = await phase(SINGLE_VERIFICATIONS, 1, (index) => verify(single + index));
    progress(`one at a time, cache miss: ${describe(missAlone, 'verifications/s')}`);
    const hitAlone = await phase(SINGLE_VERIFICATIONS, 1, (index) => verify(single + index));
    progress(`one at a time, cache hit : ${describe(hitAlone, 'verifications/s')}`);
    // Cache hits: the warm-up's requests again (within the default 300 s TTL).
    const hits = await phase(HIT_VERIFICATIONS, HIT_CONCURRENCY, (index) =>
      verify(index % WARMUP_VERIFICATIONS),
    );
    progress(`cache hits at ${HIT_CONCURRENCY} concurrent: ${describe(hits, 'verifications/s')}`);
    const hits200 = await phase(HIT_VERIFICATIONS, CONCURRENCY, (index) =>
      verify(index % WARMUP_VERIFICATIONS),
    );
    progress(`cache hits at ${CONCURRENCY} concurrent: ${describe(hits200, 'verifications/s')}`);

    const measured = median(results.measured.map((r) => r.perSecond));
    const baseline = median(results.baseline.map((r) => r.perSecond));
    const p50 = median(results.measured.map((r) => r.p50_ms));
    const p99 = median(results.measured.map((r) => r.p99_ms));
    progress(
      `medians: keel ${Math.round(measured)} verifications/s (p50 ${p50} ms, p99 ${p99} ms); direct ${Math.round(baseline)}/s ` +
        `(p50 ${median(results.baseline.map((r) => r.p50_ms))} ms, p99 ${median(results.baseline.map((r) => r.p99_ms))} ms); ` +
        `cache hit p99 ${hitAlone.p99_ms} ms alone, ${hits.p99_ms} ms at ${HIT_CONCURRENCY}, ${hits200.p99_ms} ms at ${CONCURRENCY}`,
    );
    return {
      bench: 'verify',
      metric: 'verifications_per_second',
      value: round(measured, 1),
      unit: 'verifications/s',
      baseline: round(baseline, 1),
      ratio: round(measured / baseline, 3),
      p50_ms: p50,
      p99_ms: p99,
    };
  } finally {
    agent.destroy();
    await keel?.stop();
    await standIns.stop();
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
