import { decodeAbiParameters, encodePacked, type Hex, isHex, keccak256, toBytes, toHex } from 'viem';
import type { ChainRegistry } from '../../../infra/chains/index.ts';
import { chainClient, readContract } from './chain.ts';
import { type ProviderHttp, providerUrl, throwIfRetryable } from './http.ts';
import {
  type CheckContext,
  type Finding,
  finding,
  type ProviderAdapter,
  type WorldIdInput,
  type WorldIdSettings,
} from './types.ts';

/** The Developer Portal, where cloud verify lives. */
export const WORLD_ID_DEFAULT_BASE_URL = 'https://developer.worldcoin.org';
/** World ID's Orb credential group in the WorldIDRouter; the only group the router verifies on-chain. */
export const WORLD_ID_ORB_GROUP_ID = 1n;

/**
 * World ID's `hashToField`: keccak256 of the bytes, shifted right by 8 bits so it fits the
 * BN254 field. A `0x…` string is taken as bytes (as IDKit does), anything else as UTF-8.
 */
export function hashToField(input: string | Uint8Array): Hex {
  const bytes =
    typeof input === 'string' ? (isHex(input) ? toBytes(input) : new TextEncoder().encode(input)) : input;
  return toHex(BigInt(keccak256(bytes)) >> 8n, { size: 32 });
}

/**
 * The external nullifier of an app and action, as IDKit and the on-chain template compute it:
 * hashToField(abi.encodePacked(hashToField(appId), action)).
 */
export function externalNullifierHash(appId: string, action: string): Hex {
  return hashToField(encodePacked(['uint256', 'string'], [BigInt(hashToField(appId)), action]));
}

/** A uint256 in its one canonical spelling (0x + 64 lower-case hex), so one nullifier is one key. */
export function canonicalUint256(value: string): Hex {
  return toHex(BigInt(value), { size: 32 });
}

/** Errors of WorldIDRouter → WorldIDIdentityManager → SemaphoreVerifier, and of the sequencer. */
const WORLD_ID_ROUTER_ABI = [
  {
    type: 'function',
    name: 'verifyProof',
    stateMutability: 'view',
    inputs: [
      { name: 'root', type: 'uint256' },
      { name: 'groupId', type: 'uint256' },
      { name: 'signalHash', type: 'uint256' },
      { name: 'nullifierHash', type: 'uint256' },
      { name: 'externalNullifierHash', type: 'uint256' },
      { name: 'proof', type: 'uint256[8]' },
    ],
    outputs: [],
  },
  { type: 'error', name: 'InvalidRoot', inputs: [] },
  { type: 'error', name: 'NonExistentRoot', inputs: [] },
  { type: 'error', name: 'ExpiredRoot', inputs: [] },
  { type: 'error', name: 'InvalidProof', inputs: [] },
  { type: 'error', name: 'ProofInvalid', inputs: [] },
  { type: 'error', name: 'NoSuchGroup', inputs: [{ name: 'groupId', type: 'uint256' }] },
  { type: 'error', name: 'GroupIsDeprecated', inputs: [{ name: 'groupId', type: 'uint256' }] },
] as const;

const ROOT_ERRORS = new Set(['InvalidRoot', 'NonExistentRoot', 'ExpiredRoot']);
const GROUP_ERRORS = new Set(['NoSuchGroup', 'GroupIsDeprecated']);

/** Cloud verify codes that mean "this proof does not show a (new) human": a `failed` finding. */
const CLOUD_NEGATIVE_CODES = new Set(['invalid_proof', 'invalid_merkle_root', 'max_verifications_reached']);

/**
 * World ID, two ways (docs/identity.md#world-id).
 *
 * Cloud verify v2: `POST {base}/api/v2/verify/{app_id}` with `{nullifier_hash, merkle_root, proof,
 * verification_level, action, signal_hash, max_age?}`; 200 is `{success: true, action,
 * nullifier_hash, created_at, uses?, max_uses?, verification_level?}`; an error is
 * `{code, detail, attribute}`.
 * - `invalid_proof`, `invalid_merkle_root`, `max_verifications_reached` → `failed` with that code.
 * - Any other coded 4xx (`invalid_action`, `action_inactive`, `invalid_engine`, `not_found` for
 *   an unknown app, `verification_error`, `invalid_format`, `validation_error`, `required`) →
 *   `error` with the provider's code as is: the configuration or the input is wrong.
 * - 429 and 5xx are retried, then `unavailable`.
 *
 * Differences from PROTOCOLS.md, checked against worldcoin/developer-portal
 * (`pages/api/v2/verify/[app_id].ts`): the body carries `signal_hash` (hashToField of the
 * signal; the portal defaults it to hashToField("")), not the raw signal; `max_age` must be
 * 3600–604800 s; the 200 answer also has `uses`, `max_uses` and `verification_level`. The portal
 * checks `max_verifications` before the proof, so `max_verifications_reached` proves nothing about
 * the proof: Keel treats it as `failed` (set the action to unlimited verifications if subjects
 * re-verify with the same proof outside Keel's cache TTL).
 *
 * On-chain: `WorldIDRouter.verifyProof(root, groupId = 1, signalHash, nullifierHash,
 * externalNullifierHash, proof)` by eth_call on the configured chain; a revert is a no.
 * `InvalidRoot`/`NonExistentRoot`/`ExpiredRoot` → `failed: invalid_merkle_root`; `ProofInvalid`
 * (Semaphore verifier), `InvalidProof` or any other revert → `failed: invalid_proof`;
 * `NoSuchGroup`/`GroupIsDeprecated` → `error: invalid_group`. The router does not store
 * nullifiers (the caller's contract does); Keel stores them in its identifier table instead, so
 * one nullifier binds one subject per org. Only the Orb group is on-chain: other levels are
 * `error: unsupported_verification_level`.
 */
export function createWorldIdAdapter(deps: {
  http: ProviderHttp;
  chains: ChainRegistry;
}): ProviderAdapter<WorldIdSettings, WorldIdInput> {
  async function cloud(context: CheckContext<WorldIdSettings>, input: WorldIdInput): Promise<Finding> {
    const { config } = context;
    const { settings } = config;
    const now = context.now();
    const answer = await deps.http.request({
      method: 'POST',
      url: providerUrl(
        config.baseUrl ?? WORLD_ID_DEFAULT_BASE_URL,
        `/api/v2/verify/${encodeURIComponent(settings.appId)}`,
      ),
      body: {
        nullifier_hash: input.nullifierHash,
        merkle_root: input.merkleRoot,
        proof: input.proof,
        verification_level: input.verificationLevel,
        action: settings.action,
        signal_hash: hashToField(input.signal),
        ...(settings.maxRootAgeSeconds ? { max_age: settings.maxRootAgeSeconds } : {}),
      },
      signal: context.signal,
    });
    throwIfRetryable(answer, now.getTime());
    const body = (answer.json ?? {}) as Record<string, unknown>;
    if (answer.status === 200 && body.success === true) {
      return finding(now, {
        outcome: 'passed',
        identifier: canonicalUint256(String(body.nullifier_hash ?? input.nullifierHash)),
        detail: {
          mode: 'cloud',
          action: body.action ?? settings.action,
          verificationLevel: body.verification_level ?? input.verificationLevel,
          uses: body.uses,
          maxUses: body.max_uses,
        },
      });
    }
    const code = typeof body.code === 'string' ? body.code : undefined;
    const detail = { mode: 'cloud', status: answer.status, detail: body.detail, attribute: body.attribute };
    if (code && CLOUD_NEGATIVE_CODES.has(code))
      return finding(now, { outcome: 'failed', errorCode: code, detail });
    if (answer.status === 401 || answer.status === 403)
      return finding(now, { outcome: 'error', errorCode: 'provider_unauthorized', detail });
    return finding(now, { outcome: 'error', errorCode: code ?? 'unexpected_response', detail });
  }

  async function onchain(context: CheckContext<WorldIdSettings>, input: WorldIdInput): Promise<Finding> {
    const { settings } = context.config;
    const now = context.now();
    if (input.verificationLevel !== 'orb')
      return finding(now, {
        outcome: 'error',
        errorCode: 'unsupported_verification_level',
        detail: { mode: 'onchain', verificationLevel: input.verificationLevel },
      });
    const chainId = settings.chainId!;
    const client = chainClient(deps.chains, chainId);
    let proof: readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
    try {
      proof = decodeAbiParameters([{ type: 'uint256[8]' }], input.proof as Hex)[0];
    } catch {
      // The portal's own answer to a proof that is not an ABI-encoded uint256[8].
      return finding(now, {
        outcome: 'error',
        errorCode: 'invalid_format',
        detail: { mode: 'onchain', attribute: 'proof' },
      });
    }
    const nullifierHash = canonicalUint256(input.nullifierHash);
    const call = await readContract(context.signal, () =>
      client.readContract({
        address: settings.routerAddress as Hex,
        abi: WORLD_ID_ROUTER_ABI,
        functionName: 'verifyProof',
        args: [
          BigInt(input.merkleRoot),
          WORLD_ID_ORB_GROUP_ID,
          BigInt(hashToField(input.signal)),
          BigInt(nullifierHash),
          BigInt(externalNullifierHash(settings.appId, settings.action)),
          proof,
        ],
      }),
    );
    const detail = { mode: 'onchain', verificationLevel: 'orb', router: settings.routerAddress };
    if (call.ok)
      return finding(now, {
        outcome: 'passed',
        identifier: nullifierHash,
        chainId,
        chainIds: [chainId],
        detail,
      });
    const errorName = call.errorName;
    if (errorName && ROOT_ERRORS.has(errorName))
      return finding(now, {
        outcome: 'failed',
        errorCode: 'invalid_merkle_root',
        chainId,
        detail: { ...detail, revert: errorName },
      });
    if (errorName && GROUP_ERRORS.has(errorName))
      return finding(now, {
        outcome: 'error',
        errorCode: 'invalid_group',
        chainId,
        detail: { ...detail, revert: errorName },
      });
    return finding(now, {
      outcome: 'failed',
      errorCode: 'invalid_proof',
      chainId,
      detail: { ...detail, revert: errorName ?? call.raw ?? null },
    });
  }

  return {
    name: 'world_id',
    cacheKey: (input) =>
      [input.nullifierHash, input.merkleRoot, input.proof, input.verificationLevel, input.signal].join('|'),
    check: (context, input) =>
      context.config.settings.mode === 'onchain' ? onchain(context, input) : cloud(context, input),
  };
}
