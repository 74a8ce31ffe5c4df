import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type Abi,
  type Address,
  createPublicClient,
  createWalletClient,
  encodeAbiParameters,
  type Hex,
  http,
  pad,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { compileContracts } from '../../../test/solidity.ts';
import {
  ANVIL_DEV_PRIVATE_KEYS,
  type Anvil,
  anvilUnavailable,
  startAnvil,
} from '../../infra/chains/index.ts';

const HOME_CHAIN = 31_337;
const SIDE_CHAIN = 31_338;
const APP_ID = 'app_onchain_keel';
const ACTION = 'claim';
const skip = anvilUnavailable();

/**
 * Proof of Humanity and World ID on-chain, on two anvils: the test registry with the PoH v1/v2
 * interface and the test verifier with the WorldIDRouter interface, read by the real adapters
 * through Keel's chain registry.
 */
describe('on-chain providers on anvil', { skip }, () => {
  let database: TestDatabase;
  let keel: TestApp;
  let org: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  const anvils: Record<number, Anvil> = {};
  const deployer = privateKeyToAccount(ANVIL_DEV_PRIVATE_KEYS[0]);
  const poh = compileContracts('test/TestProofOfHumanity.sol');
  const router = compileContracts('test/TestWorldIDRouter.sol').TestWorldIDRouter!;
  const addresses: { v1: Address; v2: Address; crossChain: Address; router: Address } = {} as never;

  const chain = (chainId: number) => ({ ...foundry, id: chainId });
  const wallet = (chainId: number) =>
    createWalletClient({ account: deployer, chain: chain(chainId), transport: http(anvils[chainId]!.url) });
  const reader = (chainId: number) =>
    createPublicClient({ chain: chain(chainId), transport: http(anvils[chainId]!.url) });

  async function deploy(chainId: number, contract: { abi: Abi; bytecode: Hex }): Promise<Address> {
    const hash = await wallet(chainId).deployContract({ abi: contract.abi, bytecode: contract.bytecode });
    return (await reader(chainId).waitForTransactionReceipt({ hash })).contractAddress!;
  }
  async function write(chainId: number, address: Address, abi: Abi, functionName: string, args: unknown[]) {
    const hash = await wallet(chainId).writeContract({ address, abi, functionName, args });
    await reader(chainId).waitForTransactionReceipt({ hash });
  }
  const inject = (method: 'POST' | 'PUT', url: string, payload: unknown) =>
    keel.app.inject({ method, url, payload: payload as object, headers: org.headers });
  const verify = async (body: unknown) => {
    const response = await inject('POST', '/v1/verifications', body);
    assert.equal(response.statusCode, 201, response.body);
    return response.json();
  };
  const evidenceOf = (verification: { evidence: { provider: string }[] }, provider: string) =>
    verification.evidence.find((item) => item.provider === provider) as Record<string, unknown>;

  before(async () => {
    database = await createTestDatabase();
    [anvils[HOME_CHAIN], anvils[SIDE_CHAIN]] = await Promise.all([
      startAnvil({ chainId: HOME_CHAIN }),
      startAnvil({ chainId: SIDE_CHAIN }),
    ]);
    // One deployer account per chain: deployments on a chain go one after another (nonces).
    addresses.v1 = await deploy(HOME_CHAIN, poh.TestProofOfHumanityV1!);
    addresses.v2 = await deploy(HOME_CHAIN, poh.TestProofOfHumanityV2!);
    addresses.router = await deploy(HOME_CHAIN, router);
    addresses.crossChain = await deploy(SIDE_CHAIN, poh.TestProofOfHumanityV2!);
    keel = await buildTestApp(database, {
      config: {
        chains: {
          rpcUrls: [
            { chainId: HOME_CHAIN, url: anvils[HOME_CHAIN]!.url },
            { chainId: SIDE_CHAIN, url: anvils[SIDE_CHAIN]!.url },
          ],
        },
      },
    });
    org = await createOrgWithApiKey(keel.app);
    const configured = await inject('PUT', '/v1/identity/providers/proof_of_humanity', {
      chains: [
        { chainId: HOME_CHAIN, address: addresses.v1, version: 'v1' },
        { chainId: HOME_CHAIN, address: addresses.v2, version: 'v2' },
        { chainId: SIDE_CHAIN, address: addresses.crossChain, version: 'v2_cross_chain' },
      ],
    });
    assert.equal(configured.statusCode, 200, configured.body);
    const worldId = await inject('PUT', '/v1/identity/providers/world_id', {
      appId: APP_ID,
      action: ACTION,
      mode: 'onchain',
      chainId: HOME_CHAIN,
      routerAddress: addresses.router,
    });
    assert.equal(worldId.statusCode, 200, worldId.body);
  });
  after(async () => {
    await keel?.close();
    await Promise.all(Object.values(anvils).map((anvil) => anvil.stop()));
    await database?.drop();
  });

  test('should read Proof of Humanity v1 isRegistered, with the address as its humanity id', async () => {
    const account = privateKeyToAccount(pad('0x101', { size: 32 })).address;
    await write(HOME_CHAIN, addresses.v1, poh.TestProofOfHumanityV1!.abi, 'setRegistered', [account, true]);
    const verification = await verify({ account, providers: ['proof_of_humanity'] });
    const evidence = evidenceOf(verification, 'proof_of_humanity');
    assert.equal(evidence.outcome, 'passed');
    assert.equal(evidence.identifier, account.toLowerCase());
    assert.equal(evidence.chainId, HOME_CHAIN);
    const nobody = await verify({
      account: privateKeyToAccount(pad('0x102', { size: 32 })).address,
      providers: ['proof_of_humanity'],
    });
    assert.deepEqual(
      [evidenceOf(nobody, 'proof_of_humanity').outcome, evidenceOf(nobody, 'proof_of_humanity').errorCode],
      ['failed', 'not_registered'],
    );
  });

  test('should map one humanity id seen on two chains to one subject, with the cross-chain expiry', async () => {
    const humanity = '0x00000000000000000000000000000000000a11ce';
    const home = privateKeyToAccount(pad('0x201', { size: 32 })).address;
    const side = privateKeyToAccount(pad('0x202', { size: 32 })).address;
    const { timestamp } = await reader(SIDE_CHAIN).getBlock();
    const expiration = Number(timestamp) + 365 * 86_400;
    await write(HOME_CHAIN, addresses.v2, poh.TestProofOfHumanityV2!.abi, 'setHuman', [
      home,
      humanity,
      expiration,
      true,
    ]);
    await write(SIDE_CHAIN, addresses.crossChain, poh.TestProofOfHumanityV2!.abi, 'setHuman', [
      side,
      humanity,
      expiration,
      false,
    ]);
    // 1. The home-chain address: a new subject, bound to the humanity.
    const first = await verify({ account: home, providers: ['proof_of_humanity'] });
    assert.equal(first.outcome, 'verified');
    assert.equal(evidenceOf(first, 'proof_of_humanity').identifier, humanity);
    // 2. Another address, on the other chain, with the same humanity: the same subject, no duplicate.
    const second = await verify({ account: side, providers: ['proof_of_humanity'] });
    assert.equal(second.subjectId, first.subjectId);
    assert.equal(second.duplicate, false);
    const evidence = evidenceOf(second, 'proof_of_humanity');
    assert.equal(evidence.chainId, SIDE_CHAIN);
    assert.equal(evidence.providerExpiresAt, new Date(expiration * 1000).toISOString());
    const bound = await keel.runtime.database.db
      .selectFrom('identity_identifiers')
      .select(['subject_id', 'chain_ids'])
      .where('org_id', '=', org.orgId)
      .where('identifier', '=', humanity)
      .executeTakeFirstOrThrow();
    assert.deepEqual(bound, { subject_id: first.subjectId, chain_ids: [HOME_CHAIN, SIDE_CHAIN] });
  });

  test('should verify a World ID proof through the router exactly as World ID hashes signal and action', async () => {
    const user = privateKeyToAccount(pad('0x301', { size: 32 })).address;
    const root = 0x1234n;
    const nullifier = 0xbeefn;
    const proofValues = [11n, 12n, 13n, 14n, 15n, 16n, 17n, 18n] as const;
    await write(HOME_CHAIN, addresses.router, router.abi, 'addRoot', [root]);
    await write(HOME_CHAIN, addresses.router, router.abi, 'acceptProof', [
      root,
      user,
      nullifier,
      APP_ID,
      ACTION,
      proofValues,
    ]);
    const proof = {
      proof: encodeAbiParameters([{ type: 'uint256[8]' }], [proofValues]),
      merkleRoot: `0x${root.toString(16)}`,
      nullifierHash: `0x${nullifier.toString(16)}`,
      verificationLevel: 'orb',
      signal: user,
    };
    const passed = await verify({ account: user, worldId: proof, providers: ['world_id'] });
    const evidence = evidenceOf(passed, 'world_id');
    assert.equal(evidence.outcome, 'passed', JSON.stringify(evidence));
    assert.equal(evidence.identifier, `0x${nullifier.toString(16).padStart(64, '0')}`);
    assert.equal(evidence.chainId, HOME_CHAIN);
    const other = privateKeyToAccount(pad('0x302', { size: 32 })).address;
    const wrongSignal = evidenceOf(
      await verify({ account: other, worldId: { ...proof, signal: other }, providers: ['world_id'] }),
      'world_id',
    );
    assert.deepEqual([wrongSignal.outcome, wrongSignal.errorCode], ['failed', 'invalid_proof']);
    const wrongRoot = evidenceOf(
      await verify({ account: other, worldId: { ...proof, merkleRoot: '0x99' }, providers: ['world_id'] }),
      'world_id',
    );
    assert.deepEqual([wrongRoot.outcome, wrongRoot.errorCode], ['failed', 'invalid_merkle_root']);
    const device = evidenceOf(
      await verify({
        account: other,
        worldId: { ...proof, verificationLevel: 'device' },
        providers: ['world_id'],
      }),
      'world_id',
    );
    assert.deepEqual([device.outcome, device.errorCode], ['error', 'unsupported_verification_level']);
    const malformed = evidenceOf(
      await verify({ account: other, worldId: { ...proof, proof: '0x1234' }, providers: ['world_id'] }),
      'world_id',
    );
    assert.deepEqual([malformed.outcome, malformed.errorCode], ['error', 'invalid_format']);
  });
});
