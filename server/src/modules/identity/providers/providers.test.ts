import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519';
import { encodeAbiParameters } from 'viem';
import { createChainRegistry } from '../../../infra/chains/index.ts';
import { manualClock } from '../../../infra/clock.ts';
import { createSsrfGuard } from '../../../infra/http/ssrf.ts';
import { createLogger } from '../../../infra/observability/logger.ts';
import { createMemoryStore } from '../../../infra/redis/kv.ts';
import type { ProviderName } from '../contracts.ts';
import {
  type BrightIdStandIn,
  type PassportStandIn,
  startBrightIdStandIn,
  startPassportStandIn,
  startWorldIdStandIn,
  type WorldIdStandIn,
} from '../testing/stand-ins.ts';
import { createBrightIdAdapter } from './brightid.ts';
import { createProviderHttp } from './http.ts';
import { createPassportAdapter } from './passport.ts';
import { BREAKER_FAILURE_THRESHOLD, BREAKER_OPEN_MS, createCircuitBreakers } from './resilience.ts';
import { createProviderRunner } from './runner.ts';
import type { ResolvedConfig } from './types.ts';
import { createWorldIdAdapter, externalNullifierHash, hashToField } from './world-id.ts';

const APP_ID = 'app_staging_0123456789abcdef';
const ACTION = 'verify-human';
const ADDRESS = '0x2C1E111d7C3adc823B5fA3af3f07EB62831C3c5a';
const proofOf = (seed: bigint) =>
  encodeAbiParameters([{ type: 'uint256[8]' }], [[seed, 2n, 3n, 4n, 5n, 6n, 7n, 8n]]);

function config<Settings>(
  provider: ProviderName,
  baseUrl: string,
  settings: Settings,
  overrides: Partial<ResolvedConfig<Settings>> = {},
): ResolvedConfig<Settings> {
  return {
    orgId: 'org_test',
    provider,
    baseUrl,
    apiKey: null,
    settings,
    timeoutMs: 1_000,
    retries: 2,
    cacheTtlSeconds: 0,
    version: 'v1',
    ...overrides,
  };
}

describe('World ID hashing', () => {
  test('should hash the empty signal to the value the Developer Portal uses as its default', () => {
    assert.equal(hashToField(''), '0x00c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a4');
  });

  test('should take a 0x string as bytes, as IDKit does for addresses', () => {
    assert.notEqual(hashToField(ADDRESS), hashToField(ADDRESS.slice(2)));
    assert.equal(BigInt(hashToField(ADDRESS)) >> 248n, 0n, 'fits the field: the top byte is zero');
  });

  test('should derive the external nullifier from the app id and the action', () => {
    assert.notEqual(externalNullifierHash(APP_ID, ACTION), externalNullifierHash(APP_ID, 'other'));
  });
});

describe('HTTP provider adapters against their stand-ins', () => {
  const clock = manualClock('2026-11-24T12:00:00Z');
  const http = createProviderHttp(createSsrfGuard({ allow: ['127.0.0.1'] }));
  const log = createLogger({ level: 'silent', pretty: false });
  let runner: ReturnType<typeof createProviderRunner>;
  let worldId: WorldIdStandIn;
  let passport: PassportStandIn;
  let brightId: BrightIdStandIn;
  const nodeSecret = ed25519.utils.randomPrivateKey();
  const deadline = () => new AbortController().signal;

  before(async () => {
    [worldId, passport, brightId] = await Promise.all([
      startWorldIdStandIn({ apps: { [APP_ID]: { [ACTION]: 1, unlimited: 0 } } }),
      startPassportStandIn({ apiKey: 'passport-key', scorerIds: ['100'] }),
      startBrightIdStandIn({ secretKey: nodeSecret, apps: { keel: ['BrightID', 'SeedConnected'] } }),
    ]);
  });
  beforeEach(() => {
    runner = createProviderRunner({
      kv: createMemoryStore(clock),
      clock,
      breakers: createCircuitBreakers(clock),
      log,
    });
  });
  after(async () => {
    http.close();
    await Promise.all([worldId.close(), passport.close(), brightId.close()]);
  });

  describe('World ID cloud verify v2', () => {
    const adapter = createWorldIdAdapter({ http, chains: createChainRegistry([]) });
    const settings = { appId: APP_ID, action: ACTION, mode: 'cloud' as const };
    const root = '0x1a2b';
    const input = (seed: bigint, signal = ADDRESS) => ({
      proof: proofOf(seed),
      merkleRoot: root,
      nullifierHash: `0x${(seed * 7919n).toString(16)}`,
      verificationLevel: 'orb',
      signal,
    });
    before(() => worldId.addRoot(root));

    test('should pass a valid proof and return its nullifier as the identifier', async () => {
      const proof = input(11n);
      worldId.addProof(APP_ID, ACTION, { ...proof, signalHash: hashToField(ADDRESS) });
      const evidence = await runner.run(
        adapter,
        config('world_id', worldId.url, settings),
        proof,
        deadline(),
      );
      assert.equal(evidence.outcome, 'passed', JSON.stringify(evidence));
      assert.equal(evidence.identifier, `0x${(11n * 7919n).toString(16).padStart(64, '0')}`);
    });

    test('should map the documented error codes to failed evidence with the same code', async () => {
      // 1. The signal differs from the one the proof was made for: invalid_proof.
      const proof = input(12n);
      worldId.addProof(APP_ID, ACTION, { ...proof, signalHash: hashToField(ADDRESS) });
      const wrongSignal = await runner.run(
        adapter,
        config('world_id', worldId.url, settings),
        { ...proof, signal: '0xdead' },
        deadline(),
      );
      assert.deepEqual([wrongSignal.outcome, wrongSignal.errorCode], ['failed', 'invalid_proof']);
      // 2. A root the sequencer does not know: invalid_merkle_root.
      const badRoot = await runner.run(
        adapter,
        config('world_id', worldId.url, settings),
        { ...proof, merkleRoot: '0x99' },
        deadline(),
      );
      assert.deepEqual([badRoot.outcome, badRoot.errorCode], ['failed', 'invalid_merkle_root']);
      // 3. The proof is used once (max verifications 1), then refused.
      const first = await runner.run(adapter, config('world_id', worldId.url, settings), proof, deadline());
      assert.equal(first.outcome, 'passed');
      const second = await runner.run(adapter, config('world_id', worldId.url, settings), proof, deadline());
      assert.deepEqual([second.outcome, second.errorCode], ['failed', 'max_verifications_reached']);
    });

    test('should report an unknown app or action as a configuration error, not a failed human', async () => {
      const unknownApp = await runner.run(
        adapter,
        config('world_id', worldId.url, { ...settings, appId: 'app_nope' }),
        input(13n),
        deadline(),
      );
      assert.deepEqual([unknownApp.outcome, unknownApp.errorCode], ['error', 'not_found']);
      const unknownAction = await runner.run(
        adapter,
        config('world_id', worldId.url, { ...settings, action: 'nope' }),
        input(13n),
        deadline(),
      );
      assert.deepEqual([unknownAction.outcome, unknownAction.errorCode], ['error', 'invalid_action']);
    });

    test('should retry 5xx answers with backoff and succeed when the provider recovers', async () => {
      const proof = input(14n);
      worldId.addProof(APP_ID, ACTION, { ...proof, signalHash: hashToField(ADDRESS) });
      const before = worldId.requests();
      worldId.failNext(2, 502);
      const evidence = await runner.run(
        adapter,
        config('world_id', worldId.url, settings),
        proof,
        deadline(),
      );
      assert.equal(evidence.outcome, 'passed');
      assert.equal(worldId.requests() - before, 3, 'two failed attempts, then the answer');
    });
  });

  describe('Human Passport Stamps API v2', () => {
    const adapter = createPassportAdapter({ http });
    const passportConfig = (overrides: Partial<ResolvedConfig<{ scorerId: string }>> = {}) =>
      config('passport', passport.url, { scorerId: '100' }, { apiKey: 'passport-key', ...overrides });

    test('should pass a passing score, keeping the score, its timestamp and its expiry', async () => {
      passport.setScore(ADDRESS, {
        score: 33.538,
        lastScoreTimestamp: '2026-11-20T10:00:00.000Z',
        expirationTimestamp: '2027-02-06T14:28:06.879Z',
      });
      const evidence = await runner.run(adapter, passportConfig(), { address: ADDRESS }, deadline());
      assert.equal(evidence.outcome, 'passed');
      assert.equal(evidence.score, 33.538);
      assert.equal(evidence.identifier, ADDRESS.toLowerCase());
      assert.equal(evidence.observedAt.toISOString(), '2026-11-20T10:00:00.000Z');
      assert.equal(evidence.providerExpiresAt?.toISOString(), '2027-02-06T14:28:06.879Z');
    });

    test('should fail a score below the threshold', async () => {
      const low = '0x0000000000000000000000000000000000000a11';
      passport.setScore(low, { score: 4.2 });
      const evidence = await runner.run(adapter, passportConfig(), { address: low }, deadline());
      assert.deepEqual(
        [evidence.outcome, evidence.errorCode, evidence.score],
        ['failed', 'below_threshold', 4.2],
      );
    });

    test('should map a rejected API key and an unknown scorer to configuration errors', async () => {
      const badKey = await runner.run(
        adapter,
        passportConfig({ apiKey: 'wrong' }),
        { address: ADDRESS },
        deadline(),
      );
      assert.deepEqual([badKey.outcome, badKey.errorCode], ['error', 'provider_unauthorized']);
      const badScorer = await runner.run(
        adapter,
        passportConfig({ settings: { scorerId: '999' } }),
        { address: ADDRESS },
        deadline(),
      );
      assert.deepEqual([badScorer.outcome, badScorer.errorCode], ['error', 'scorer_not_found']);
    });

    test('should give up after the configured retries on 429 and say the provider is unavailable', async () => {
      const before = passport.requests();
      passport.failNext(3, 429);
      const evidence = await runner.run(
        adapter,
        passportConfig({ retries: 2 }),
        { address: ADDRESS },
        deadline(),
      );
      assert.deepEqual([evidence.outcome, evidence.errorCode], ['unavailable', 'rate_limited']);
      assert.equal(passport.requests() - before, 3);
    });

    test('should answer a repeat from the cache within its TTL, and ask again after it', async () => {
      const cachedConfig = passportConfig({ cacheTtlSeconds: 60 });
      const before = passport.requests();
      await runner.run(adapter, cachedConfig, { address: ADDRESS }, deadline());
      const repeat = await runner.run(adapter, cachedConfig, { address: ADDRESS.toLowerCase() }, deadline());
      assert.equal(repeat.cached, true);
      assert.equal(repeat.score, 33.538);
      assert.equal(passport.requests() - before, 1, 'the repeat did not reach the provider');
      // A changed configuration (its version) does not reuse answers given under the old one.
      const changed = await runner.run(
        adapter,
        { ...cachedConfig, version: 'v2' },
        { address: ADDRESS },
        deadline(),
      );
      assert.equal(changed.cached, false);
      clock.advance(61_000);
      const expired = await runner.run(adapter, cachedConfig, { address: ADDRESS }, deadline());
      assert.equal(expired.cached, false);
      assert.equal(passport.requests() - before, 3);
    });

    test('should open the circuit after consecutive failures, refuse calls, then probe and close', async () => {
      const failing = passportConfig({ retries: 0 });
      passport.failNext(BREAKER_FAILURE_THRESHOLD, 503);
      for (let index = 0; index < BREAKER_FAILURE_THRESHOLD; index++) {
        const evidence = await runner.run(adapter, failing, { address: ADDRESS }, deadline());
        assert.equal(evidence.errorCode, 'provider_unavailable');
      }
      const before = passport.requests();
      const refused = await runner.run(adapter, failing, { address: ADDRESS }, deadline());
      assert.deepEqual([refused.outcome, refused.errorCode], ['unavailable', 'circuit_open']);
      assert.equal(passport.requests(), before, 'an open circuit makes no call');
      clock.advance(BREAKER_OPEN_MS);
      const probe = await runner.run(adapter, failing, { address: ADDRESS }, deadline());
      assert.equal(probe.outcome, 'passed', 'the half-open probe went through');
      const closed = await runner.run(adapter, failing, { address: ADDRESS }, deadline());
      assert.equal(closed.outcome, 'passed');
    });

    test('should time out an attempt that takes longer than the configured timeout', async () => {
      passport.setDelay(300);
      try {
        const evidence = await runner.run(
          adapter,
          passportConfig({ timeoutMs: 50, retries: 0 }),
          { address: ADDRESS },
          deadline(),
        );
        assert.deepEqual([evidence.outcome, evidence.errorCode], ['timeout', 'timeout']);
        const cut = await runner.run(
          adapter,
          passportConfig({ retries: 0 }),
          { address: ADDRESS },
          AbortSignal.timeout(50),
        );
        assert.deepEqual([cut.outcome, cut.errorCode], ['timeout', 'deadline_exceeded']);
      } finally {
        passport.setDelay(0);
      }
    });

    test('should refuse a base URL on a private address unless the operator allowlists it', async () => {
      const guarded = createProviderRunner({
        kv: createMemoryStore(clock),
        clock,
        breakers: createCircuitBreakers(clock),
        log,
      });
      const strictHttp = createProviderHttp(createSsrfGuard({ allow: [] }));
      try {
        const evidence = await guarded.run(
          createPassportAdapter({ http: strictHttp }),
          passportConfig(),
          { address: ADDRESS },
          deadline(),
        );
        assert.deepEqual([evidence.outcome, evidence.errorCode], ['error', 'base_url_refused']);
      } finally {
        strictHttp.close();
      }
    });
  });

  describe('BrightID node v6', () => {
    const adapter = createBrightIdAdapter({ http });
    const settings = () => ({ app: 'keel', nodePublicKey: brightId.publicKey, verification: 'BrightID' });
    const brightIdConfig = (
      overrides: Partial<ReturnType<typeof settings>> & { includeHash?: boolean } = {},
    ) => config('brightid', `${brightId.url}/brightid/v6`, { ...settings(), ...overrides });

    test('should pass a unique appUserId whose nacl signature verifies with the node key', async () => {
      brightId.setUser('keel', 'user-1', ['BrightID']);
      const evidence = await runner.run(adapter, brightIdConfig(), { appUserId: 'user-1' }, deadline());
      assert.equal(evidence.outcome, 'passed', JSON.stringify(evidence));
      assert.equal(evidence.identifier, 'user-1');
      const hashed = await runner.run(
        adapter,
        brightIdConfig({ includeHash: true }),
        { appUserId: 'user-1' },
        deadline(),
      );
      assert.equal(hashed.outcome, 'passed', 'the verificationHash is part of the signed message');
    });

    test('should refuse a verification signed by another key', async () => {
      brightId.setUser('keel', 'user-2', ['BrightID']);
      brightId.signWithWrongKey(true);
      try {
        const evidence = await runner.run(adapter, brightIdConfig(), { appUserId: 'user-2' }, deadline());
        assert.deepEqual([evidence.outcome, evidence.errorCode], ['error', 'invalid_signature']);
      } finally {
        brightId.signWithWrongKey(false);
      }
      const otherKey = Buffer.from(ed25519.getPublicKey(ed25519.utils.randomPrivateKey())).toString('base64');
      const evidence = await runner.run(
        adapter,
        brightIdConfig({ nodePublicKey: otherKey }),
        { appUserId: 'user-2' },
        deadline(),
      );
      assert.deepEqual([evidence.outcome, evidence.errorCode], ['error', 'invalid_signature']);
    });

    test('should map errorNum 61 to not_found, an unknown app to an error, and no unique verification to failed', async () => {
      const unknown = await runner.run(adapter, brightIdConfig(), { appUserId: 'nobody' }, deadline());
      assert.deepEqual([unknown.outcome, unknown.errorCode], ['not_found', 'unknown_app_user_id']);
      const noApp = await runner.run(
        adapter,
        brightIdConfig({ app: 'other' }),
        { appUserId: 'user-1' },
        deadline(),
      );
      assert.deepEqual([noApp.outcome, noApp.errorCode], ['error', 'app_not_found']);
      brightId.setUser('keel', 'user-3', ['SeedConnected']);
      const notUnique = await runner.run(adapter, brightIdConfig(), { appUserId: 'user-3' }, deadline());
      assert.deepEqual([notUnique.outcome, notUnique.errorCode], ['failed', 'not_unique']);
    });
  });
});
