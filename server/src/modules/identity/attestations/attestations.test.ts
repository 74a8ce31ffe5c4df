import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { sql } from 'kysely';
import { createPublicClient, createWalletClient, decodeFunctionData, type Hex, http, parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { createOrgWithApiKey } from '../../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '../../../../test/harness.ts';
import { waitUntil } from '../../../../test/process.ts';
import { assembleModules } from '../../../app.ts';
import {
  ANVIL_DEV_PRIVATE_KEYS,
  type Anvil,
  anvilUnavailable,
  startAnvil,
} from '../../../infra/chains/index.ts';
import { manualClock } from '../../../infra/clock.ts';
import type { Event, EventsService } from '../../../platform/events/index.ts';
import type { IdentityModule } from '../index.ts';
import { REGISTRY_ABI } from './contract.ts';
import { deployContracts } from './deploy.ts';
import { commitmentOf } from './domain/commitment.ts';
import type { IdentityAttestationsModule } from './index.ts';
import { TRACKER_POLL_MS } from './tracker.ts';

const CHAINS = [31337, 31338] as const;
const DAY_MS = 24 * 60 * 60 * 1000;

interface AttestationJson {
  id: string;
  chainId: number;
  status: string;
  attester: Hex;
  commitment: Hex;
  registryAddress: Hex;
  opening: { salt: Hex; orgId: string; subjectId: string; verificationId: string };
  attestTransaction: null | {
    status: string;
    txHash: Hex | null;
    blockHash: Hex | null;
    confirmations: number;
    broadcasts: number;
    signings: number;
    reorgs: number;
    lastError: string | null;
  };
  revokeTransaction: AttestationJson['attestTransaction'];
}

describe('identity attestations on two anvil chains', { skip: anvilUnavailable() }, () => {
  let database: TestDatabase;
  let keel: TestApp;
  const anvils = new Map<number, Anvil>();
  let org: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  let otherOrg: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  const clock = manualClock(new Date());

  const client = (chainId: number) => createPublicClient({ transport: http(anvils.get(chainId)!.url) });
  const rpc = (chainId: number, method: string, params: unknown[] = []) =>
    client(chainId).request({ method: method as never, params: params as never }) as Promise<unknown>;
  const mine = (chainId: number, blocks = 1) => rpc(chainId, 'anvil_mine', [`0x${blocks.toString(16)}`]);
  const moduleNamed = <T>(name: string) => assembleModules(keel.runtime).find((m) => m.name === name) as T;
  const tracker = () => moduleNamed<IdentityAttestationsModule>('identity-attestations').tracker;
  /** One tracker pass, once every transaction it looked at last is due again. */
  const tick = async () => {
    clock.advance(TRACKER_POLL_MS);
    await tracker().tick();
  };
  const inject = (options: InjectOptions) => keel.app.inject(options);

  /** A verification decided by identity core, written as its table holds one. */
  async function seedVerification(
    orgId: string,
    options: { outcome?: string; expiresAt?: Date | null; expiredAt?: Date | null } = {},
  ): Promise<{ verificationId: string; subjectId: string }> {
    const subjectId = (await moduleNamed<IdentityModule>('identity').subjects.create(orgId)).subject.id;
    const verificationId = keel.runtime.newId('vrf');
    const expiresAt =
      options.expiresAt === undefined ? new Date(clock.now().getTime() + 30 * DAY_MS) : options.expiresAt;
    await sql`insert into identity_verifications
        (org_id, id, subject_id, outcome, reasons, total_weight, policy, request, expires_at, expired_at, created_at)
      values (${orgId}, ${verificationId}, ${subjectId}, ${options.outcome ?? 'verified'}, ${['test']}, 1, '{}', '{}',
              ${expiresAt}, ${options.expiredAt ?? null}, ${clock.now()})`.execute(keel.runtime.database.db);
    return { verificationId, subjectId };
  }

  const attest = (verificationId: string, chainIds: readonly number[], headers = org.headers) =>
    inject({
      method: 'POST',
      url: `/v1/identity/verifications/${verificationId}/attestations`,
      headers,
      payload: { chainIds },
    });
  async function attestations(verificationId: string): Promise<AttestationJson[]> {
    const response = await inject({
      method: 'GET',
      url: `/v1/identity/verifications/${verificationId}/attestations`,
      headers: org.headers,
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().data;
  }
  const isValid = (attestation: AttestationJson) =>
    client(attestation.chainId).readContract({
      address: attestation.registryAddress,
      abi: REGISTRY_ABI,
      functionName: 'isValid',
      args: [attestation.attester, attestation.commitment],
    });
  /**
   * The org's events of `type` about the verification, once `count` are readable: events become
   * readable when every older transaction of the cluster has ended (gap-free reads), which other
   * test files' transactions can hold back for a moment.
   */
  async function eventsOf(type: string, verificationId: string, count: number) {
    let found: Event[] = [];
    await waitUntil(async () => {
      const events = await moduleNamed<{ service: EventsService }>('events').service.list(org.orgId, {
        limit: 100,
        types: [type],
      });
      found = events.filter(
        (event) => (event.payload as { verificationId: string }).verificationId === verificationId,
      );
      return found.length >= count;
    }, `${count} ${type} events are readable`);
    return found;
  }
  async function fund(address: Hex) {
    for (const chainId of CHAINS) {
      const wallet = createWalletClient({
        account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEYS[1]),
        transport: http(anvils.get(chainId)!.url),
      });
      await wallet.sendTransaction({ to: address, value: parseEther('1'), chain: null });
    }
  }
  async function signerOf(headers: Record<string, string>): Promise<Hex> {
    const response = await inject({ method: 'GET', url: '/v1/identity/attestations/signer', headers });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().address;
  }

  before(async () => {
    database = await createTestDatabase();
    for (const chainId of CHAINS) anvils.set(chainId, await startAnvil({ chainId }));
    keel = await buildTestApp(database, {
      clock,
      config: { chains: { rpcUrls: CHAINS.map((chainId) => ({ chainId, url: anvils.get(chainId)!.url })) } },
    });
    for (const chainId of CHAINS) {
      await deployContracts({
        db: keel.runtime.database.db,
        clock,
        chainId,
        rpcUrl: anvils.get(chainId)!.url,
        deployerPrivateKey: ANVIL_DEV_PRIVATE_KEYS[0],
      });
    }
    org = await createOrgWithApiKey(keel.app);
    otherOrg = await createOrgWithApiKey(keel.app);
    await fund(await signerOf(org.headers));
  });
  after(async () => {
    await keel?.close();
    for (const anvil of anvils.values()) await anvil.stop();
    await database?.drop();
  });

  test('the org signer is made once, sealed at rest, and only its address is shown', async () => {
    const response = await inject({
      method: 'GET',
      url: '/v1/identity/attestations/signer',
      headers: org.headers,
    });
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json();
    assert.equal(body.address, await signerOf(org.headers));
    assert.deepEqual(
      body.chains.map((chain: { chainId: number; registryAddress: string | null; balanceWei: string }) => [
        chain.chainId,
        chain.registryAddress !== null,
        BigInt(chain.balanceWei) > 0n,
      ]),
      CHAINS.map((chainId) => [chainId, true, true]),
    );
    assert.doesNotMatch(response.body, /private/i);
    const row = await keel.runtime.database.db
      .selectFrom('identity_attestation_signers')
      .selectAll()
      .where('org_id', '=', org.orgId)
      .executeTakeFirstOrThrow();
    assert.match(row.private_key_sealed, /^v1\./);
    const key = keel.runtime.secretBox.open(
      row.private_key_sealed,
      `identity.attestation-signer:${org.orgId}`,
    );
    assert.equal(privateKeyToAccount(key as Hex).address, body.address);
    assert.notEqual(await signerOf(otherOrg.headers), body.address, 'each org has its own signer');
  });

  describe('attesting, confirming and revoking on both chains', () => {
    let verification: { verificationId: string; subjectId: string };

    test('a verified verdict is attested on two chains and confirmed at the threshold', async () => {
      verification = await seedVerification(org.orgId);
      const queued = await attest(verification.verificationId, CHAINS);
      assert.equal(queued.statusCode, 202, queued.body);
      assert.deepEqual(
        queued.json().data.map((a: AttestationJson) => [a.chainId, a.status, a.attestTransaction?.status]),
        CHAINS.map((chainId) => [chainId, 'pending', 'queued']),
      );

      // 1. Signed and sent; anvil mines each into a block at once: one confirmation of two.
      await tick();
      await tick();
      for (const attestation of await attestations(verification.verificationId)) {
        assert.equal(attestation.status, 'pending');
        assert.equal(attestation.attestTransaction?.status, 'sent');
        assert.equal(attestation.attestTransaction?.confirmations, 1);
        assert.equal(await isValid(attestation), true, 'valid on chain once mined');
      }
      // 2. One more block on each chain reaches the threshold (2 on anvil).
      for (const chainId of CHAINS) await mine(chainId);
      await tick();
      const confirmed = await attestations(verification.verificationId);
      assert.deepEqual(
        confirmed.map((a) => [
          a.chainId,
          a.status,
          a.attestTransaction?.status,
          a.attestTransaction?.confirmations,
        ]),
        CHAINS.map((chainId) => [chainId, 'confirmed', 'confirmed', 2]),
      );
      const events = await eventsOf('attestation.confirmed', verification.verificationId, CHAINS.length);
      assert.deepEqual(events.map((event) => (event.payload as { chainId: number }).chainId).sort(), [
        ...CHAINS,
      ]);
    });

    test('only the salted commitment goes on chain: the transaction carries nothing else', async () => {
      for (const attestation of await attestations(verification.verificationId)) {
        assert.equal(commitmentOf(attestation.opening), attestation.commitment);
        assert.notEqual(
          commitmentOf({ ...attestation.opening, salt: `0x${'00'.repeat(32)}` }),
          attestation.commitment,
          'the salt is part of the commitment',
        );
        const sent = await client(attestation.chainId).getTransaction({
          hash: attestation.attestTransaction!.txHash!,
        });
        const call = decodeFunctionData({ abi: REGISTRY_ABI, data: sent.input });
        assert.equal(call.functionName, 'attest');
        assert.equal(call.args[0], attestation.commitment);
        for (const id of [verification.subjectId, verification.verificationId, org.orgId]) {
          assert.ok(
            !sent.input.includes(Buffer.from(id).toString('hex')),
            `the calldata does not contain ${id}`,
          );
        }
      }
      const [first, second] = await attestations(verification.verificationId);
      assert.notEqual(
        first!.commitment,
        second!.commitment,
        'a fresh salt per chain: the two are not linkable',
      );
    });

    test('attesting the same verification again keeps its attestations and sends nothing', async () => {
      const before = await attestations(verification.verificationId);
      const again = await attest(verification.verificationId, CHAINS);
      assert.equal(again.statusCode, 202, again.body);
      assert.deepEqual(
        again.json().data.map((a: AttestationJson) => [a.id, a.status]),
        before.map((a) => [a.id, 'confirmed']),
      );
    });

    test('revoking a verification revokes it on both chains: isValid turns false', async () => {
      const response = await inject({
        method: 'DELETE',
        url: `/v1/identity/verifications/${verification.verificationId}/attestations`,
        headers: org.headers,
      });
      assert.equal(response.statusCode, 202, response.body);
      assert.deepEqual(
        response.json().data.map((a: AttestationJson) => a.status),
        CHAINS.map(() => 'revoking'),
      );
      await tick(); // signed, sent and mined
      for (const chainId of CHAINS) await mine(chainId);
      await tick(); // two confirmations
      const revoked = await attestations(verification.verificationId);
      for (const attestation of revoked) {
        assert.equal(attestation.status, 'revoked');
        assert.equal(attestation.revokeTransaction?.status, 'confirmed');
        assert.equal(await isValid(attestation), false);
      }
      assert.equal(
        (await eventsOf('attestation.revoked', verification.verificationId, CHAINS.length)).length,
        CHAINS.length,
      );
    });
  });

  test('a reorg that drops the attestation’s block is noticed: the transaction is sent again and re-confirmed', async () => {
    const chainId = 31338;
    const { verificationId } = await seedVerification(org.orgId);
    // 1. The block the attestation lands in will be reorged away.
    const snapshot = await rpc(chainId, 'evm_snapshot');
    assert.equal((await attest(verificationId, [chainId])).statusCode, 202);
    await tick(); // sent, mined by anvil at once
    await tick(); // seen in its block: one confirmation
    const [seen] = await attestations(verificationId);
    assert.equal(seen!.attestTransaction?.confirmations, 1);
    const firstBlock = seen!.attestTransaction!.blockHash!;
    assert.ok(firstBlock);

    // 2. The reorg: back to before the transaction, then a different block at that height.
    await rpc(chainId, 'evm_revert', [snapshot]);
    await mine(chainId);
    assert.equal(await isValid(seen!), false, 'the reorg took the attestation off the chain');

    // 3. The tracker finds the transaction gone and broadcasts the same signed bytes again.
    await tick();
    const [resent] = await attestations(verificationId);
    assert.equal(resent!.status, 'pending');
    assert.equal(resent!.attestTransaction?.reorgs, 1);
    assert.equal(resent!.attestTransaction?.broadcasts, 2);
    assert.equal(resent!.attestTransaction?.txHash, seen!.attestTransaction?.txHash, 'the same transaction');

    // 4. Mined again in a new block, and confirmed there.
    await tick();
    await mine(chainId);
    await tick();
    const [confirmed] = await attestations(verificationId);
    assert.equal(confirmed!.status, 'confirmed');
    assert.equal(confirmed!.attestTransaction?.confirmations, 2);
    assert.notEqual(confirmed!.attestTransaction?.blockHash, firstBlock);
    assert.equal(await isValid(confirmed!), true);
  });

  test('a transaction whose nonce was taken during a reorg is signed again with a new one', async () => {
    const chainId = 31337;
    const { verificationId } = await seedVerification(org.orgId);
    const snapshot = await rpc(chainId, 'evm_snapshot');
    assert.equal((await attest(verificationId, [chainId])).statusCode, 202);
    await tick();
    const [sent] = await attestations(verificationId);
    await rpc(chainId, 'evm_revert', [snapshot]);
    // Another transaction of the same signer takes the nonce on the new chain.
    const signer = await moduleNamed<IdentityAttestationsModule>(
      'identity-attestations',
    ).service.signerAccount(org.orgId);
    const wallet = createWalletClient({ account: signer, transport: http(anvils.get(chainId)!.url) });
    await wallet.sendTransaction({ to: signer.address, value: 0n, chain: null });
    await tick(); // gone; the rebroadcast is refused; signed again and sent
    await mine(chainId);
    await tick();
    const [confirmed] = await attestations(verificationId);
    assert.equal(confirmed!.status, 'confirmed', JSON.stringify(confirmed));
    assert.equal(confirmed!.attestTransaction?.signings, 2);
    assert.notEqual(confirmed!.attestTransaction?.txHash, sent!.attestTransaction?.txHash);
    assert.equal(await isValid(confirmed!), true);
  });

  test('an attestation revoked before it was signed is cancelled and never sent', async () => {
    const { verificationId } = await seedVerification(org.orgId);
    assert.equal((await attest(verificationId, [31337])).statusCode, 202);
    const response = await inject({
      method: 'DELETE',
      url: `/v1/identity/verifications/${verificationId}/attestations`,
      headers: org.headers,
    });
    assert.equal(response.statusCode, 202, response.body);
    const [attestation] = response.json().data as AttestationJson[];
    assert.equal(attestation!.status, 'revoked');
    assert.equal(attestation!.attestTransaction?.status, 'cancelled');
    assert.equal(attestation!.revokeTransaction, null);
    await tick();
    assert.equal((await attestations(verificationId))[0]!.attestTransaction?.txHash, null);
  });

  test('an expired verification’s attestation is marked expired from its event, with no transaction', async () => {
    const { verificationId, subjectId } = await seedVerification(org.orgId);
    assert.equal((await attest(verificationId, [31337])).statusCode, 202);
    await tick();
    await mine(31337);
    await tick();
    const [confirmed] = await attestations(verificationId);
    assert.equal(confirmed!.status, 'confirmed');
    const { expires_at } = await keel.runtime.database.db
      .selectFrom('identity_verifications')
      .select('expires_at')
      .where('id', '=', verificationId)
      .executeTakeFirstOrThrow();
    await keel.runtime.database.transaction((tx) =>
      moduleNamed<{ service: EventsService }>('events').service.emit(tx, org.orgId, [
        {
          type: 'verification.expired',
          payload: {
            verificationId,
            subjectId,
            previousOutcome: 'verified',
            expiresAt: (expires_at as Date).toISOString(),
            reverificationId: keel.runtime.newId('vrf'),
            newOutcome: 'not_verified',
          },
        },
      ]),
    );
    // The consumer reads the event once it is readable (see eventsOf).
    await waitUntil(async () => {
      await tick();
      return (await attestations(verificationId))[0]!.status === 'expired';
    }, 'the attestation is marked expired');
    const [expired] = await attestations(verificationId);
    assert.equal(expired!.status, 'expired');
    assert.equal(expired!.revokeTransaction, null);
  });

  test('an unfunded signer’s transaction is retried with back-off, and says why', async () => {
    const poor = await createOrgWithApiKey(keel.app);
    const { verificationId } = await seedVerification(poor.orgId);
    assert.equal((await attest(verificationId, [31337], poor.headers)).statusCode, 202);
    await tick();
    const response = await inject({
      method: 'GET',
      url: `/v1/identity/verifications/${verificationId}/attestations`,
      headers: poor.headers,
    });
    const [attestation] = response.json().data as AttestationJson[];
    assert.equal(attestation!.status, 'pending');
    assert.match(attestation!.attestTransaction?.lastError ?? '', /funds/i);
    assert.equal(await isValid(attestation!), false);
    const row = await keel.runtime.database.db
      .selectFrom('identity_attestation_txs')
      .select(['failures', 'next_check_at'])
      .where('attestation_id', '=', attestation!.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.failures, 1);
    assert.ok(row.next_check_at.getTime() > clock.now().getTime() + TRACKER_POLL_MS, 'backs off');
  });

  describe('refusals, validation, authentication and tenancy', () => {
    test('only a current verified verdict is attested', async () => {
      const cases = [
        await seedVerification(org.orgId, { outcome: 'not_verified' }),
        await seedVerification(org.orgId, { outcome: 'needs_review' }),
        await seedVerification(org.orgId, { expiredAt: clock.now() }),
        await seedVerification(org.orgId, { expiresAt: new Date(clock.now().getTime() + 60_000) }),
      ];
      for (const { verificationId } of cases) {
        const response = await attest(verificationId, [31337]);
        assert.equal(response.statusCode, 422, response.body);
        assert.equal(response.json().code, 'VERDICT_NOT_ATTESTABLE');
      }
    });

    test('a chain without an RPC URL is refused, naming it', async () => {
      const { verificationId } = await seedVerification(org.orgId);
      const response = await attest(verificationId, [31337, 1]);
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(response.json().code, 'ATTESTATION_CHAIN_UNAVAILABLE');
      assert.match(response.json().detail, /\b1 \(no RPC URL/);
      assert.deepEqual(await attestations(verificationId), [], 'nothing is queued on the other chains');
    });

    test('bad chain ids are a 400', async () => {
      const { verificationId } = await seedVerification(org.orgId);
      for (const chainIds of [[], [0], ['mainnet'], [1.5], [1, 1]]) {
        const response = await attest(verificationId, chainIds as number[]);
        assert.equal(response.statusCode, 400, `${JSON.stringify(chainIds)}: ${response.body}`);
        assert.equal(response.json().code, 'VALIDATION_FAILED');
      }
    });

    test('a missing verification is 404, and revoking one never attested is 404', async () => {
      const missing = await attest(keel.runtime.newId('vrf'), [31337]);
      assert.equal(missing.statusCode, 404, missing.body);
      assert.equal(missing.json().code, 'VERIFICATION_NOT_FOUND');
      const { verificationId } = await seedVerification(org.orgId);
      const revoke = await inject({
        method: 'DELETE',
        url: `/v1/identity/verifications/${verificationId}/attestations`,
        headers: org.headers,
      });
      assert.equal(revoke.statusCode, 404, revoke.body);
      assert.equal(revoke.json().code, 'ATTESTATION_NOT_FOUND');
    });

    test('every route needs authentication, and writing needs identity:write', async () => {
      const { verificationId } = await seedVerification(org.orgId);
      const routes = [
        ['GET', '/v1/identity/attestations/signer'],
        ['POST', `/v1/identity/verifications/${verificationId}/attestations`],
        ['GET', `/v1/identity/verifications/${verificationId}/attestations`],
        ['DELETE', `/v1/identity/verifications/${verificationId}/attestations`],
      ] as const;
      for (const [method, url] of routes) {
        const response = await inject({
          method,
          url,
          payload: method === 'POST' ? { chainIds: [31337] } : undefined,
        });
        assert.equal(response.statusCode, 401, `${method} ${url}: ${response.body}`);
      }
      const reader = await createOrgWithApiKey(keel.app, { permissions: ['identity:read'] });
      const readerVerification = await seedVerification(reader.orgId);
      const write = await attest(readerVerification.verificationId, [31337], reader.headers);
      assert.equal(write.statusCode, 403, write.body);
      const read = await inject({
        method: 'GET',
        url: '/v1/identity/attestations/signer',
        headers: reader.headers,
      });
      assert.equal(read.statusCode, 200, read.body);
    });

    test('should not attest, list or revoke another org’s verification', async () => {
      const { verificationId } = await seedVerification(org.orgId);
      for (const method of ['POST', 'GET', 'DELETE'] as const) {
        const response = await inject({
          method,
          url: `/v1/identity/verifications/${verificationId}/attestations`,
          headers: otherOrg.headers,
          payload: method === 'POST' ? { chainIds: [31337] } : undefined,
        });
        assert.equal(response.statusCode, 404, `${method}: ${response.body}`);
        assert.equal(response.json().code, 'VERIFICATION_NOT_FOUND');
      }
    });
  });
});
