import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519';
import { sql } from 'kysely';
import { encodeAbiParameters, getAddress } from 'viem';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { assembleModules } from '../../app.ts';
import { manualClock } from '../../infra/clock.ts';
import type { IdentityModule } from './index.ts';
import { hashToField } from './providers/world-id.ts';
import {
  type BrightIdStandIn,
  type PassportStandIn,
  startBrightIdStandIn,
  startPassportStandIn,
  startWorldIdStandIn,
  type WorldIdStandIn,
} from './testing/stand-ins.ts';
import { VERIFICATION_DEADLINE_MS } from './verifications.ts';

const APP_ID = 'app_staging_keel';
const ACTION = 'join';
const DAY_MS = 86_400_000;

let sequence = 0;
/** A fresh EVM address per call, so tests do not share provider answers. */
const address = () => `0x${(0xa11ce00000n + BigInt(++sequence)).toString(16).padStart(40, '0')}`;

describe('verification end to end, against the provider stand-ins', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let org: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  let worldId: WorldIdStandIn;
  let passport: PassportStandIn;
  let brightId: BrightIdStandIn;
  const clock = manualClock(new Date());
  const nodeSecret = ed25519.utils.randomPrivateKey();

  const inject = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown, headers = org.headers) =>
    keel.app.inject({ method, url, payload: payload as object, headers });
  const verify = async (body: unknown, headers = org.headers) => {
    const response = await inject('POST', '/v1/verifications', body, headers);
    assert.equal(response.statusCode, 201, response.body);
    return response.json();
  };
  // Read from the outbox table itself: the ordered event API holds back events while any
  // transaction on the server (another test file's) is older than them.
  const eventsOf = async (orgId: string, type: string) =>
    (
      await keel.runtime.database.db
        .selectFrom('events')
        .select('payload')
        .where('org_id', '=', orgId)
        .where('type', '=', type)
        .execute()
    ).map((event) => event.payload as Record<string, unknown>);
  const identity = () =>
    assembleModules(keel.runtime).find((module) => module.name === 'identity') as IdentityModule;

  async function configure(headers: Record<string, string>) {
    const put = async (provider: string, body: unknown) => {
      const response = await inject('PUT', `/v1/identity/providers/${provider}`, body, headers);
      assert.equal(response.statusCode, 200, response.body);
    };
    await put('passport', { baseUrl: passport.url, apiKey: 'passport-key', scorerId: '100' });
    await put('brightid', {
      baseUrl: `${brightId.url}/brightid/v6`,
      app: 'keel',
      nodePublicKey: brightId.publicKey,
    });
    await put('world_id', { baseUrl: worldId.url, appId: APP_ID, action: ACTION });
  }

  before(async () => {
    database = await createTestDatabase();
    [worldId, passport, brightId] = await Promise.all([
      startWorldIdStandIn({ apps: { [APP_ID]: { [ACTION]: 0 } } }),
      startPassportStandIn({ apiKey: 'passport-key', scorerIds: ['100'] }),
      startBrightIdStandIn({ secretKey: nodeSecret, apps: { keel: ['BrightID'] } }),
    ]);
    keel = await buildTestApp(database, { clock, config: { webhooks: { ssrfAllowlist: ['127.0.0.1'] } } });
    org = await createOrgWithApiKey(keel.app);
    await configure(org.headers);
  });
  after(async () => {
    await keel.close();
    await Promise.all([worldId.close(), passport.close(), brightId.close(), database.drop()]);
  });

  test('should verify an account with every provider in parallel and keep the verdict as history', async () => {
    const account = address();
    passport.setScore(account, { score: 31.5 });
    brightId.setUser('keel', account.toLowerCase(), ['BrightID']);
    const verification = await verify({ account });
    assert.equal(verification.outcome, 'verified');
    assert.deepEqual(verification.passedProviders.sort(), ['brightid', 'passport']);
    const byProvider = Object.fromEntries(
      verification.evidence.map((e: { provider: string }) => [e.provider, e]),
    );
    assert.equal(byProvider.passport.score, 31.5);
    assert.equal(byProvider.world_id.outcome, 'skipped', 'no proof was given');
    assert.equal(
      verification.account,
      `eip155:1:${getAddress(account)}`,
      'a bare address is taken as CAIP-10 on chain 1',
    );
    // The subject was created for the account, and the history answers for it.
    const history = await inject('GET', `/v1/verifications?subjectId=${verification.subjectId}`);
    assert.equal(history.statusCode, 200);
    assert.deepEqual(
      history.json().data.map((v: { id: string }) => v.id),
      [verification.id],
    );
    const again = await verify({ account });
    assert.equal(again.subjectId, verification.subjectId, 'the same account is the same subject');
    const completed = await eventsOf(org.orgId, 'verification.completed');
    assert.ok(
      completed.some((event) => event.verificationId === verification.id && event.outcome === 'verified'),
    );
  });

  test('should give concurrent first verifications of one account one subject, and bind to it', async () => {
    const account = address();
    passport.setScore(account, { score: 30 });
    const verifications = await Promise.all(
      Array.from({ length: 8 }, () => verify({ account, providers: ['passport'] })),
    );
    const subjects = new Set(verifications.map((v: { subjectId: string }) => v.subjectId));
    assert.equal(subjects.size, 1, 'one human, one subject');
    assert.ok(verifications.every((v: { duplicate: boolean }) => !v.duplicate));
    const [subjectId] = subjects;
    const bindings = await keel.runtime.database.db
      .selectFrom('identity_identifiers')
      .select(['subject_id', 'first_verification_id'])
      .where('org_id', '=', org.orgId)
      .where('provider', '=', 'passport')
      .where('identifier', '=', account.toLowerCase())
      .execute();
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.subject_id, subjectId);
    assert.ok(verifications.some((v: { id: string }) => v.id === bindings[0]!.first_verification_id));
    const stored = await keel.runtime.database.db
      .selectFrom('identity_subjects')
      .select('id')
      .where('org_id', '=', org.orgId)
      .where(sql<boolean>`metadata->>'account' = ${`eip155:1:${getAddress(account)}`}`)
      .execute();
    assert.deepEqual(
      stored.map((row) => row.id),
      [subjectId],
    );
  });

  test('should answer a repeat within the cache TTL from the cache, without asking the providers', async () => {
    const account = address();
    passport.setScore(account, { score: 25 });
    brightId.setUser('keel', account.toLowerCase(), ['BrightID']);
    await verify({ account });
    const before = passport.requests() + brightId.requests();
    const repeat = await verify({ account });
    assert.equal(passport.requests() + brightId.requests(), before);
    assert.ok(
      repeat.evidence
        .filter((e: { outcome: string }) => e.outcome !== 'skipped')
        .every((e: { cached: boolean }) => e.cached),
    );
    assert.equal(repeat.outcome, 'verified');
  });

  test('should verify a World ID proof and apply the policy’s required provider and minimum score', async () => {
    const policy = await inject('PUT', '/v1/identity/policy', {
      providers: { world_id: { weight: 2, required: true }, passport: { weight: 1, minScore: 30 } },
      minSources: 1,
      minTotalWeight: 3,
    });
    assert.equal(policy.statusCode, 200, policy.body);
    try {
      const account = address();
      passport.setScore(account, { score: 29 });
      const without = await verify({ account });
      assert.equal(without.outcome, 'not_verified');
      assert.ok(without.reasons.includes('required_provider_not_passed:world_id'));
      const proof = {
        proof: encodeAbiParameters(
          [{ type: 'uint256[8]' }],
          [[1n, 2n, 3n, 4n, 5n, 6n, 7n, BigInt(sequence)]],
        ),
        merkleRoot: '0x0abc',
        nullifierHash: `0x${(0xfeed00n + BigInt(sequence)).toString(16)}`,
        verificationLevel: 'orb',
        signal: account,
      };
      worldId.addRoot(proof.merkleRoot);
      worldId.addProof(APP_ID, ACTION, { ...proof, signalHash: hashToField(account) });
      const lowScore = await verify({ account, worldId: proof });
      assert.equal(lowScore.outcome, 'not_verified', 'weight 2 < 3: the passport score 29 is under 30');
      assert.ok(lowScore.reasons.includes('insufficient_weight'));
      passport.setScore(account, { score: 30 });
      const other = address();
      passport.setScore(other, { score: 30 });
      const proof2 = {
        ...proof,
        proof: encodeAbiParameters(
          [{ type: 'uint256[8]' }],
          [[9n, 9n, 9n, 9n, 9n, 9n, 9n, BigInt(++sequence)]],
        ),
        nullifierHash: `0x${(0xbeef00n + BigInt(sequence)).toString(16)}`,
        signal: other,
      };
      worldId.addProof(APP_ID, ACTION, { ...proof2, signalHash: hashToField(other) });
      const verified = await verify({ account: other, worldId: proof2 });
      assert.equal(verified.outcome, 'verified', JSON.stringify(verified.reasons));
      assert.equal(verified.totalWeight, 3);
    } finally {
      await keel.runtime.database.db
        .deleteFrom('identity_policies')
        .where('org_id', '=', org.orgId)
        .execute();
      await configure(org.headers); // clears the cached setup
    }
  });

  test('should flag a second subject presenting another subject’s identifier as a duplicate', async () => {
    const shared = address();
    passport.setScore(shared, { score: 40 });
    const create = async (externalId: string) =>
      (await inject('POST', '/v1/identity/subjects', { externalId })).json().id as string;
    const first = await create(`first-${sequence}`);
    const second = await create(`second-${sequence}`);
    const original = await verify({ subjectId: first, account: shared, providers: ['passport'] });
    assert.equal(original.outcome, 'verified');
    assert.equal(original.duplicate, false);
    const copy = await verify({ subjectId: second, account: shared, providers: ['passport'] });
    assert.equal(copy.duplicate, true);
    assert.equal(copy.duplicateOf, first);
    assert.equal(copy.outcome, 'needs_review', 'the default policy holds duplicates for review');
    const detected = await eventsOf(org.orgId, 'human.duplicate_detected');
    assert.ok(
      detected.some(
        (event) => event.subjectId === second && event.duplicateOf === first && event.provider === 'passport',
      ),
    );
    // The first subject stays the owner of the identifier.
    const firstAgain = await verify({ subjectId: first, account: shared, providers: ['passport'] });
    assert.equal(firstAgain.duplicate, false);
  });

  test('should count a provider that misses the deadline as timeout evidence and answer on time', async () => {
    const account = address();
    brightId.setUser('keel', account.toLowerCase(), ['BrightID']);
    passport.setDelay(VERIFICATION_DEADLINE_MS + 1_000);
    const response = await inject('PUT', '/v1/identity/providers/passport', {
      baseUrl: passport.url,
      scorerId: '100',
      timeoutMs: 10_000,
      retries: 0,
    });
    assert.equal(response.statusCode, 200, response.body);
    try {
      const startedAt = performance.now();
      const verification = await verify({ account, providers: ['passport', 'brightid'] });
      const elapsed = performance.now() - startedAt;
      assert.ok(elapsed < VERIFICATION_DEADLINE_MS + 900, `answered in ${Math.round(elapsed)} ms`);
      const late = verification.evidence.find((e: { provider: string }) => e.provider === 'passport');
      assert.deepEqual([late.outcome, late.errorCode], ['timeout', 'deadline_exceeded']);
      assert.equal(verification.outcome, 'verified', 'BrightID alone satisfies the default policy');
    } finally {
      passport.setDelay(0);
      await configure(org.headers);
    }
  });

  test('should re-verify a verdict whose evidence lapsed and emit verification.expired', async () => {
    const account = address();
    const lapses = new Date(clock.now().getTime() + 2 * DAY_MS);
    passport.setScore(account, { score: 50, expirationTimestamp: lapses.toISOString() });
    await inject('PUT', '/v1/identity/providers/passport', {
      baseUrl: passport.url,
      scorerId: '100',
      cacheTtlSeconds: 0,
    });
    try {
      const first = await verify({ account, providers: ['passport'] });
      assert.equal(first.outcome, 'verified');
      assert.equal(first.expiresAt, lapses.toISOString());
      // 1. Nothing is due yet.
      assert.equal(await identity().verifications.expireDue(), 0);
      // 2. The stamp lapses; the provider now reports a low score.
      clock.advance(3 * DAY_MS);
      passport.setScore(account, { score: 2 });
      assert.equal(await identity().verifications.expireDue(), 1);
      const old = (await inject('GET', `/v1/verifications/${first.id}`)).json();
      assert.ok(old.expiredAt);
      const history = (await inject('GET', `/v1/verifications?subjectId=${first.subjectId}`)).json().data;
      assert.equal(history[0].supersedes, first.id);
      assert.equal(history[0].outcome, 'not_verified');
      const expired = await eventsOf(org.orgId, 'verification.expired');
      assert.ok(
        expired.some(
          (event) =>
            event.verificationId === first.id &&
            event.reverificationId === history[0].id &&
            event.newOutcome === 'not_verified',
        ),
      );
      // 3. A second run finds nothing left to do.
      assert.equal(await identity().verifications.expireDue(), 0);
    } finally {
      await configure(org.headers);
    }
  });

  test('should count verifications by outcome, provider and day', async () => {
    const other = await createOrgWithApiKey(keel.app);
    await configure(other.headers);
    const account = address();
    passport.setScore(account, { score: 22 });
    await verify({ account, providers: ['passport'] }, other.headers);
    await verify({ account: address(), providers: ['passport'] }, other.headers);
    const day = clock.now().toISOString().slice(0, 10);
    const response = await inject(
      'GET',
      `/v1/identity/analytics?from=${day}&to=${day}`,
      undefined,
      other.headers,
    );
    assert.equal(response.statusCode, 200, response.body);
    const analytics = response.json();
    assert.deepEqual(analytics.totals, { verified: 1, not_verified: 1, needs_review: 0, duplicates: 0 });
    assert.deepEqual(
      analytics.byProvider.map((row: { day: string; provider: string; outcome: string; count: number }) => [
        row.day,
        row.provider,
        row.outcome,
        row.count,
      ]),
      [
        [day, 'passport', 'failed', 1],
        [day, 'passport', 'passed', 1],
      ],
    );
  });
});
