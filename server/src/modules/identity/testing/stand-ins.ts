import { createHash, createPrivateKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ed25519 } from '@noble/curves/ed25519';
import { decodeFunctionData, encodeFunctionResult, type Hex, keccak256 } from 'viem';
import { brightIdSignedMessage } from '../providers/brightid.ts';
import { POH_V2_ABI } from '../providers/proof-of-humanity.ts';

/**
 * Local stand-ins for the HTTP personhood providers, answering in each provider's documented
 * wire format (PROTOCOLS.md and the notes in each adapter). Tests and the verify benchmark run
 * the real adapters against them; nothing of the adapters is mocked. Each stand-in answers
 * after a fixed delay and can be told to fail its next requests.
 */

export interface StandIn {
  readonly url: string;
  /** Requests answered so far. */
  requests(): number;
  /** The next `count` requests answer `status` (default 503) with an empty JSON body. */
  failNext(count: number, status?: number): void;
  /** Every answer waits this long first. */
  setDelay(delayMs: number): void;
  close(): Promise<void>;
}

type Handler = (
  request: http.IncomingMessage,
  url: URL,
  body: unknown,
) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>;

async function serve(handler: Handler, options: { delayMs?: number } = {}): Promise<StandIn> {
  let delayMs = options.delayMs ?? 0;
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  let answered = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      if (delayMs > 0) await sleep(delayMs);
      answered += 1;
      let status: number;
      let body: unknown;
      if (failures.count > 0) {
        failures = { ...failures, count: failures.count - 1 };
        status = failures.status;
        body = {};
      } else {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        ({ status, body } = await handler(request, new URL(request.url ?? '/', 'http://stand-in'), parsed));
      }
      const payload = JSON.stringify(body);
      response.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
      });
      response.end(payload);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => answered,
    failNext(count, status = 503) {
      failures = { count, status };
    },
    setDelay(ms) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ── World ID: Developer Portal cloud verify v2 ────────────────────────────────────────────────

export interface WorldIdProof {
  readonly proof: string;
  readonly merkleRoot: string;
  readonly nullifierHash: string;
  readonly signalHash: string;
}

export interface WorldIdStandIn extends StandIn {
  /** Makes a proof valid for this app and action (as the sequencer would find it). */
  addProof(appId: string, action: string, proof: WorldIdProof): void;
  /** Known Merkle roots; any other root is `invalid_merkle_root`. */
  addRoot(root: string): void;
  /** Bench mode: every well-formed proof with a known-or-any root is valid. */
  acceptAll(accept: boolean): void;
}

export async function startWorldIdStandIn(options: {
  /** app id → action → max verifications (0 is unlimited). */
  apps: Record<string, Record<string, number>>;
  delayMs?: number;
}): Promise<WorldIdStandIn> {
  const proofs = new Map<string, WorldIdProof>();
  const roots = new Set<string>();
  const uses = new Map<string, { uses: number; createdAt: string }>();
  let acceptEverything = false;
  const error = (status: number, code: string, detail: string, attribute: string | null = null) => ({
    status,
    body: { code, detail, attribute },
  });
  const key = (appId: string, action: string, nullifierHash: string) =>
    `${appId}|${action}|${BigInt(nullifierHash).toString(16)}`;

  const standIn = await serve(
    (request, url, raw) => {
      const match = /^\/api\/v2\/verify\/([^/]+)$/.exec(url.pathname);
      if (!match) return error(404, 'not_found', 'No such route.');
      if (request.method !== 'POST')
        return error(
          405,
          'method_not_allowed',
          `HTTP method '${request.method}' is not allowed for this endpoint.`,
        );
      const appId = decodeURIComponent(match[1]!);
      const body = (raw ?? {}) as Record<string, unknown>;
      for (const field of ['action', 'proof', 'nullifier_hash', 'merkle_root', 'verification_level']) {
        if (typeof body[field] !== 'string')
          return error(400, 'required', 'This attribute is required.', field);
      }
      const signalHash =
        (body.signal_hash as string | undefined) ??
        '0x00c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a4';
      if (!/^0x[0-9a-f]{64}$/.test(signalHash))
        return error(400, 'validation_error', 'Invalid signal_hash.', 'signal_hash');
      const actions = options.apps[appId];
      if (!actions) return error(404, 'not_found', 'App not found. App may be no longer active.');
      const action = body.action as string;
      const maxVerifications = actions[action];
      if (maxVerifications === undefined) return error(400, 'invalid_action', 'Action not found.', 'action');
      const nullifierHash = body.nullifier_hash as string;
      const used = uses.get(key(appId, action, nullifierHash));
      if (used && maxVerifications > 0 && used.uses >= maxVerifications) {
        return error(
          400,
          'max_verifications_reached',
          maxVerifications === 1
            ? 'This person has already verified for this action.'
            : `This person has already verified for this action the maximum number of times (${maxVerifications}).`,
        );
      }
      if (!acceptEverything) {
        if (!roots.has(BigInt(body.merkle_root as string).toString(16)))
          return error(
            400,
            'invalid_merkle_root',
            'The provided Merkle root is invalid. User appears to be unverified.',
          );
        const known = proofs.get(`${appId}|${action}|${body.proof as string}`);
        if (
          !known ||
          BigInt(known.nullifierHash) !== BigInt(nullifierHash) ||
          BigInt(known.merkleRoot) !== BigInt(body.merkle_root as string) ||
          BigInt(known.signalHash) !== BigInt(signalHash)
        )
          return error(
            400,
            'invalid_proof',
            'The provided proof is invalid and it cannot be verified. Please check all inputs and try again.',
          );
      }
      const next = { uses: (used?.uses ?? 0) + 1, createdAt: used?.createdAt ?? new Date().toISOString() };
      uses.set(key(appId, action, nullifierHash), next);
      return {
        status: 200,
        body: {
          success: true,
          uses: next.uses,
          action,
          max_uses: maxVerifications,
          nullifier_hash: nullifierHash,
          created_at: next.createdAt,
          verification_level: body.verification_level,
        },
      };
    },
    { delayMs: options.delayMs },
  );
  return {
    ...standIn,
    addProof(appId, action, proof) {
      proofs.set(`${appId}|${action}|${proof.proof}`, proof);
    },
    addRoot(root) {
      roots.add(BigInt(root).toString(16));
    },
    acceptAll(accept) {
      acceptEverything = accept;
    },
  };
}

// ── Human Passport: Stamps API v2 ─────────────────────────────────────────────────────────────

export interface PassportScore {
  readonly score: number;
  readonly lastScoreTimestamp?: string;
  readonly expirationTimestamp?: string;
  readonly threshold?: number;
}

export interface PassportStandIn extends StandIn {
  setScore(address: string, score: PassportScore): void;
}

export async function startPassportStandIn(options: {
  apiKey: string;
  scorerIds: readonly string[];
  /** The score of an address nobody set (bench mode); 0 when absent. */
  defaultScore?: number;
  delayMs?: number;
}): Promise<PassportStandIn> {
  const scores = new Map<string, PassportScore>();
  const standIn = await serve(
    (request, url) => {
      const match = /^\/v2\/stamps\/([^/]+)\/score\/([^/]+)$/.exec(url.pathname);
      if (!match || request.method !== 'GET') return { status: 404, body: { detail: 'Not Found' } };
      if (request.headers['x-api-key'] !== options.apiKey)
        return { status: 401, body: { detail: 'Invalid API Key.' } };
      const scorerId = decodeURIComponent(match[1]!);
      const address = decodeURIComponent(match[2]!);
      if (!options.scorerIds.includes(scorerId))
        return { status: 404, body: { detail: 'Unable to get scorer' } };
      if (!/^0x[0-9a-fA-F]{40}$/.test(address)) return { status: 400, body: { detail: 'Invalid address' } };
      const known = scores.get(address.toLowerCase());
      const entry = known ?? { score: options.defaultScore ?? 0 };
      const threshold = entry.threshold ?? 20;
      const now = new Date().toISOString();
      return {
        status: 200,
        body: {
          address: address.toLowerCase(),
          score: entry.score.toFixed(3),
          passing_score: entry.score >= threshold,
          last_score_timestamp: entry.lastScoreTimestamp ?? now,
          expiration_timestamp: entry.expirationTimestamp ?? null,
          threshold: threshold.toFixed(0),
          error: null,
          stamps:
            entry.score > 0
              ? {
                  CivicUniquenessPass: {
                    score: entry.score.toFixed(3),
                    dedup: false,
                    expiration_date: entry.expirationTimestamp ?? null,
                  },
                }
              : {},
        },
      };
    },
    { delayMs: options.delayMs },
  );
  return {
    ...standIn,
    setScore(address, score) {
      scores.set(address.toLowerCase(), score);
    },
  };
}

/** A 32-byte Ed25519 seed as a node:crypto private key (PKCS#8 wraps the seed after a fixed prefix). */
function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  const prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' });
}

// ── BrightID node v6 ──────────────────────────────────────────────────────────────────────────

export interface BrightIdStandIn extends StandIn {
  /** The node's Ed25519 public key, base64, as the node reports it. */
  readonly publicKey: string;
  /** Marks an appUserId as verified (`unique`) for these verifications of the app, or not unique. */
  setUser(app: string, appUserId: string, verifications: readonly string[]): void;
  /** Signs with another key from now on (to test that Keel checks the node's signature). */
  signWithWrongKey(wrong: boolean): void;
}

export async function startBrightIdStandIn(options: {
  /** The node's 32-byte Ed25519 secret key (seed). */
  secretKey: Uint8Array;
  /** app → the verification expressions it accepts, e.g. `{ keel: ['BrightID'] }`. */
  apps: Record<string, readonly string[]>;
  /** Bench mode: every appUserId of every app is unique. */
  everyoneUnique?: boolean;
  /** The API prefix of a node. */
  prefix?: string;
  delayMs?: number;
}): Promise<BrightIdStandIn> {
  const prefix = options.prefix ?? '/brightid/v6';
  const users = new Map<string, Set<string>>();
  // Signed with node:crypto (native), so the stand-in itself stays fast under benchmark load.
  const privateKey = ed25519PrivateKey(options.secretKey);
  const wrongKey = ed25519PrivateKey(randomBytes(32));
  let signWrong = false;
  const publicKey = Buffer.from(ed25519.getPublicKey(options.secretKey)).toString('base64');
  const foxxError = (code: number, errorNum: number, errorMessage: string) => ({
    status: code,
    body: { error: true, errorNum, errorMessage, code },
  });
  const standIn = await serve(
    (request, url) => {
      const match = new RegExp(`^${prefix}/verifications/([^/]+)/([^/]+)/?$`).exec(url.pathname);
      if (!match || request.method !== 'GET') return foxxError(404, 404, 'unknown path');
      const app = decodeURIComponent(match[1]!);
      const appUserId = decodeURIComponent(match[2]!);
      const verifications = options.apps[app];
      if (!verifications) return foxxError(404, 12, `${app} app is not found.`);
      const granted = options.everyoneUnique ? new Set(verifications) : users.get(`${app}|${appUserId}`);
      if (!granted) return foxxError(404, 61, `${appUserId} is not found.`);
      const includeHash = url.searchParams.get('includeHash') === 'true';
      const timestamp =
        url.searchParams.get('timestamp') === 'seconds' ? Math.floor(Date.now() / 1000) : undefined;
      const signed = url.searchParams.get('signed') === 'nacl';
      const data = verifications.map((verification) => {
        // The node's verificationHash is the SHA-256 of the verification expression, in hex.
        const verificationHash = includeHash
          ? createHash('sha256').update(verification).digest('hex')
          : undefined;
        const unique = granted.has(verification);
        const entry: Record<string, unknown> = { unique, app, appUserId, verification, sig: '', timestamp };
        if (verificationHash) entry.verificationHash = verificationHash;
        if (unique && signed) {
          const message = brightIdSignedMessage({ app, appUserId, verificationHash, timestamp });
          entry.sig = sign(null, Buffer.from(message), signWrong ? wrongKey : privateKey).toString('base64');
          entry.publicKey = publicKey;
        }
        return entry;
      });
      return { status: 200, body: { data } };
    },
    { delayMs: options.delayMs },
  );
  return {
    ...standIn,
    publicKey,
    setUser(app, appUserId, verifications) {
      users.set(`${app}|${appUserId}`, new Set(verifications));
    },
    signWithWrongKey(wrong) {
      signWrong = wrong;
    },
  };
}

// ── Proof of Humanity v2 behind a JSON-RPC node (benchmark) ───────────────────────────────────

/**
 * A JSON-RPC endpoint answering `eth_call` to a Proof of Humanity v2 registry after a fixed
 * delay: every address is human, with a humanity id derived from the address. Tests use the
 * test registry on anvil instead; this exists so the benchmark can give all four providers the
 * same fixed latency (anvil answers in about a millisecond).
 */
export async function startProofOfHumanityRpcStandIn(options: { delayMs?: number } = {}): Promise<StandIn> {
  const answer = (call: { id?: unknown; method?: string; params?: unknown[] }) => {
    if (call.method === 'eth_chainId') return { jsonrpc: '2.0', id: call.id, result: '0x7a69' };
    if (call.method !== 'eth_call')
      return { jsonrpc: '2.0', id: call.id, error: { code: -32601, message: 'method not found' } };
    const { data } = (call.params?.[0] ?? {}) as { data?: Hex };
    try {
      const { functionName, args } = decodeFunctionData({ abi: POH_V2_ABI, data: data! });
      const result =
        functionName === 'isHuman'
          ? encodeFunctionResult({ abi: POH_V2_ABI, functionName, result: true })
          : functionName === 'humanityOf'
            ? encodeFunctionResult({
                abi: POH_V2_ABI,
                functionName,
                result: keccak256(args[0] as Hex).slice(0, 42) as Hex,
              })
            : '0x';
      return { jsonrpc: '2.0', id: call.id, result };
    } catch {
      return { jsonrpc: '2.0', id: call.id, error: { code: 3, message: 'execution reverted', data: '0x' } };
    }
  };
  return serve(
    (_request, _url, body) => ({
      status: 200,
      body: Array.isArray(body) ? body.map(answer) : answer(body as { id?: unknown; method?: string }),
    }),
    { delayMs: options.delayMs },
  );
}
