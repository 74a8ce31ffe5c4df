import assert from 'node:assert/strict';
import { createHash, sign as ed25519Sign, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1';
import { base58 } from '@scure/base';
import type { InjectOptions } from 'fastify';
import { type Address, createPublicClient, createWalletClient, http } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { createOrgWithApiKey } from '../../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '../../../../test/harness.ts';
import { waitUntil } from '../../../../test/process.ts';
import { compileContracts } from '../../../../test/solidity.ts';
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
import { cosmosAddressOf, serializeSignDoc } from './domain/cosmos.ts';
import type { IdentityWalletsModule } from './index.ts';
import { WALLET_CHALLENGE_TTL_MS } from './service.ts';

const ANVIL_CHAIN_ID = foundry.id;
const SOLANA_MAINNET = '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp';
const skipWithoutAnvil = anvilUnavailable();

/** A Solana keypair: its base58 address and a signer of UTF-8 messages (base58 signatures). */
function solanaKeypair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return {
    address: base58.encode(raw),
    sign: (message: string) => base58.encode(ed25519Sign(null, Buffer.from(message, 'utf8'), privateKey)),
  };
}

/** A Cosmos (secp256k1) key: its cosmos1 address, its public key, and an ADR-036 signer of a sign doc. */
function cosmosKeypair() {
  const privateKey = secp256k1.utils.randomPrivateKey();
  const publicKey = secp256k1.getPublicKey(privateKey, true);
  return {
    address: cosmosAddressOf(publicKey, 'cosmos'),
    publicKey: Buffer.from(publicKey).toString('base64'),
    signDoc: (doc: unknown) => {
      const digest = createHash('sha256').update(serializeSignDoc(doc)).digest();
      return Buffer.from(secp256k1.sign(digest, privateKey).toCompactRawBytes()).toString('base64');
    },
  };
}

describe('identity wallets', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let anvil: Anvil | undefined;
  let org: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  let otherOrg: Awaited<ReturnType<typeof createOrgWithApiKey>>;
  const clock = manualClock(new Date());

  before(async () => {
    database = await createTestDatabase();
    if (!skipWithoutAnvil) anvil = await startAnvil({ chainId: ANVIL_CHAIN_ID });
    keel = await buildTestApp(database, {
      clock,
      config: anvil ? { chains: { rpcUrls: [{ chainId: ANVIL_CHAIN_ID, url: anvil.url }] } } : {},
    });
    org = await createOrgWithApiKey(keel.app);
    otherOrg = await createOrgWithApiKey(keel.app);
  });
  after(async () => {
    await keel?.close();
    await anvil?.stop();
    await database?.drop();
  });

  const inject = (options: InjectOptions) => keel.app.inject(options);
  const moduleNamed = <T>(name: string) => assembleModules(keel.runtime).find((m) => m.name === name) as T;
  const newSubject = async (orgId = org.orgId) =>
    (await moduleNamed<IdentityModule>('identity').subjects.create(orgId)).subject.id;

  async function challenge(
    subjectId: string,
    body: Record<string, unknown>,
    headers = org.headers,
  ): Promise<{ id: string; message: string; accountId: string; signDoc: unknown }> {
    const response = await inject({
      method: 'POST',
      url: `/v1/identity/subjects/${subjectId}/wallets/challenges`,
      headers,
      payload: body,
    });
    assert.equal(response.statusCode, 201, response.body);
    return response.json();
  }

  const link = (subjectId: string, body: Record<string, unknown>, headers = org.headers) =>
    inject({ method: 'POST', url: `/v1/identity/subjects/${subjectId}/wallets`, headers, payload: body });

  async function linkEvm(
    subjectId: string,
    account = privateKeyToAccount(generatePrivateKey()),
    reference = '1',
  ) {
    const issued = await challenge(subjectId, { namespace: 'eip155', reference, address: account.address });
    const signature = await account.signMessage({ message: issued.message });
    return { account, issued, response: await link(subjectId, { challengeId: issued.id, signature }) };
  }

  describe('linking by signed challenge', () => {
    test('an EVM account links with a SIWE (EIP-4361) signature and is listed as CAIP-10', async () => {
      const subjectId = await newSubject();
      const { account, issued, response } = await linkEvm(subjectId);
      assert.match(issued.message, /^localhost:8080 wants you to sign in with your Ethereum account:\n0x/);
      assert.match(issued.message, new RegExp(`\nRequest ID: ${issued.id}`));
      assert.equal(response.statusCode, 201, response.body);
      assert.deepEqual(
        {
          accountId: response.json().accountId,
          kind: response.json().kind,
          created: response.json().created,
        },
        { accountId: `eip155:1:${account.address}`, kind: 'eoa', created: true },
      );
      const listed = await inject({
        method: 'GET',
        url: `/v1/identity/subjects/${subjectId}/wallets`,
        headers: org.headers,
      });
      assert.equal(listed.statusCode, 200);
      assert.deepEqual(
        listed.json().data.map((wallet: { accountId: string }) => wallet.accountId),
        [`eip155:1:${account.address}`],
      );
    });

    test('a Solana account links with a Sign-In With Solana (Ed25519) signature', async () => {
      const subjectId = await newSubject();
      const keypair = solanaKeypair();
      const issued = await challenge(subjectId, {
        namespace: 'solana',
        reference: SOLANA_MAINNET,
        address: keypair.address,
      });
      assert.match(issued.message, /wants you to sign in with your Solana account:\n/);
      assert.match(issued.message, /\nChain ID: mainnet\n/);
      const response = await link(subjectId, {
        challengeId: issued.id,
        signature: keypair.sign(issued.message),
      });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().accountId, `solana:${SOLANA_MAINNET}:${keypair.address}`);
      assert.equal(response.json().kind, 'ed25519');
    });

    test('a Cosmos account links with an ADR-036 signature of the returned sign doc', async () => {
      const subjectId = await newSubject();
      const keypair = cosmosKeypair();
      const issued = await challenge(subjectId, {
        namespace: 'cosmos',
        reference: 'cosmoshub-4',
        address: keypair.address,
      });
      const doc = issued.signDoc as { msgs: [{ value: { signer: string; data: string } }] };
      assert.equal(doc.msgs[0].value.signer, keypair.address);
      assert.equal(Buffer.from(doc.msgs[0].value.data, 'base64').toString('utf8'), issued.message);
      const response = await link(subjectId, {
        challengeId: issued.id,
        signature: keypair.signDoc(issued.signDoc),
        publicKey: keypair.publicKey,
      });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().accountId, `cosmos:cosmoshub-4:${keypair.address}`);
      assert.equal(response.json().kind, 'secp256k1');
    });

    test('linking emits wallet.linked and unlinking emits wallet.unlinked, in the org’s event stream', async () => {
      const subjectId = await newSubject();
      const { account, response } = await linkEvm(subjectId);
      const accountId = `eip155:1:${account.address}`;
      const unlinked = await inject({
        method: 'DELETE',
        url: `/v1/identity/subjects/${subjectId}/wallets/${encodeURIComponent(accountId)}`,
        headers: org.headers,
      });
      assert.equal(unlinked.statusCode, 204, unlinked.body);
      // Events become readable once every older transaction of the cluster has ended (gap-free
      // reads), which other test files' transactions can hold back for a moment.
      let mine: Event[] = [];
      await waitUntil(async () => {
        const events = await moduleNamed<{ service: EventsService }>('events').service.list(org.orgId, {
          limit: 100,
          types: ['wallet.linked', 'wallet.unlinked'],
        });
        mine = events.filter((event) => (event.payload as { subjectId: string }).subjectId === subjectId);
        return mine.length === 2;
      }, 'both wallet events are readable');
      assert.deepEqual(
        mine.map((event) => [event.type, (event.payload as { accountId: string }).accountId]),
        [
          ['wallet.linked', accountId],
          ['wallet.unlinked', accountId],
        ],
      );
      assert.equal((mine[0]!.payload as { walletId: string }).walletId, response.json().id);
    });
  });

  describe('proofs that fail', () => {
    test('a signature by another key is refused with 422 and does not burn the challenge', async () => {
      const subjectId = await newSubject();
      const account = privateKeyToAccount(generatePrivateKey());
      // On a chain with an RPC URL the address is checked as a contract account too, and is not one.
      const reference = anvil ? String(ANVIL_CHAIN_ID) : '1';
      const issued = await challenge(subjectId, { namespace: 'eip155', reference, address: account.address });
      const forged = await privateKeyToAccount(generatePrivateKey()).signMessage({ message: issued.message });
      const refused = await link(subjectId, { challengeId: issued.id, signature: forged });
      assert.equal(refused.statusCode, 422, refused.body);
      assert.equal(refused.json().code, anvil ? 'WALLET_PROOF_INVALID' : 'WALLET_CHAIN_UNSUPPORTED');
      const good = await link(subjectId, {
        challengeId: issued.id,
        signature: await account.signMessage({ message: issued.message }),
      });
      assert.equal(good.statusCode, 201, good.body);
    });

    test('a signature that is not the EOA’s, on a chain without an RPC URL, cannot be checked (422)', async () => {
      const subjectId = await newSubject();
      const account = privateKeyToAccount(generatePrivateKey());
      const issued = await challenge(subjectId, {
        namespace: 'eip155',
        reference: '10',
        address: account.address,
      });
      const forged = await privateKeyToAccount(generatePrivateKey()).signMessage({ message: issued.message });
      const refused = await link(subjectId, { challengeId: issued.id, signature: forged });
      assert.equal(refused.statusCode, 422, refused.body);
      assert.equal(refused.json().code, 'WALLET_CHAIN_UNSUPPORTED');
    });

    test('a Solana signature over another message, or by another key, is refused', async () => {
      const subjectId = await newSubject();
      const keypair = solanaKeypair();
      const issued = await challenge(subjectId, {
        namespace: 'solana',
        reference: SOLANA_MAINNET,
        address: keypair.address,
      });
      for (const signature of [keypair.sign(`${issued.message}!`), solanaKeypair().sign(issued.message)]) {
        const response = await link(subjectId, { challengeId: issued.id, signature });
        assert.equal(response.statusCode, 422, response.body);
        assert.equal(response.json().code, 'WALLET_PROOF_INVALID');
      }
    });

    test('a Cosmos public key that is not the address’s key is refused, as is a signature by another key', async () => {
      const subjectId = await newSubject();
      const keypair = cosmosKeypair();
      const intruder = cosmosKeypair();
      const issued = await challenge(subjectId, {
        namespace: 'cosmos',
        reference: 'cosmoshub-4',
        address: keypair.address,
      });
      const wrongKey = await link(subjectId, {
        challengeId: issued.id,
        signature: intruder.signDoc(issued.signDoc),
        publicKey: intruder.publicKey,
      });
      assert.equal(wrongKey.statusCode, 422, wrongKey.body);
      assert.match(wrongKey.json().detail, /not the key of this address/);
      const wrongSignature = await link(subjectId, {
        challengeId: issued.id,
        signature: intruder.signDoc(issued.signDoc),
        publicKey: keypair.publicKey,
      });
      assert.equal(wrongSignature.statusCode, 422, wrongSignature.body);
      assert.equal(wrongSignature.json().code, 'WALLET_PROOF_INVALID');
    });

    test('a challenge links once: the same signature again is refused', async () => {
      const subjectId = await newSubject();
      const account = privateKeyToAccount(generatePrivateKey());
      const issued = await challenge(subjectId, {
        namespace: 'eip155',
        reference: '1',
        address: account.address,
      });
      const signature = await account.signMessage({ message: issued.message });
      assert.equal((await link(subjectId, { challengeId: issued.id, signature })).statusCode, 201);
      const replay = await link(subjectId, { challengeId: issued.id, signature });
      assert.equal(replay.statusCode, 422, replay.body);
      assert.equal(replay.json().code, 'WALLET_CHALLENGE_INVALID');
    });

    test('an expired challenge is refused', async () => {
      const subjectId = await newSubject();
      const account = privateKeyToAccount(generatePrivateKey());
      const issued = await challenge(subjectId, {
        namespace: 'eip155',
        reference: '1',
        address: account.address,
      });
      const signature = await account.signMessage({ message: issued.message });
      // Time only moves forward: rate-limit windows and the other tests read the same clock.
      clock.advance(WALLET_CHALLENGE_TTL_MS + 1);
      const response = await link(subjectId, { challengeId: issued.id, signature });
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(response.json().code, 'WALLET_CHALLENGE_INVALID');
      assert.match(response.json().detail, /expired/);
    });

    test('another subject’s challenge cannot link to this subject', async () => {
      const [first, second] = [await newSubject(), await newSubject()];
      const account = privateKeyToAccount(generatePrivateKey());
      const issued = await challenge(first, {
        namespace: 'eip155',
        reference: '1',
        address: account.address,
      });
      const response = await link(second, {
        challengeId: issued.id,
        signature: await account.signMessage({ message: issued.message }),
      });
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(response.json().code, 'WALLET_CHALLENGE_INVALID');
    });
  });

  describe('one subject per wallet', () => {
    test('a wallet linked to another subject answers 409 with that subject; after unlinking it moves', async () => {
      const [holder, claimant] = [await newSubject(), await newSubject()];
      const { account } = await linkEvm(holder);
      const conflict = await linkEvm(claimant, account);
      assert.equal(conflict.response.statusCode, 409, conflict.response.body);
      assert.equal(conflict.response.json().code, 'WALLET_LINKED_TO_OTHER_SUBJECT');
      assert.equal(conflict.response.json().subjectId, holder);
      assert.equal(conflict.response.json().accountId, `eip155:1:${account.address}`);

      const unlinked = await inject({
        method: 'DELETE',
        url: `/v1/identity/subjects/${holder}/wallets/eip155:1:${account.address}`,
        headers: org.headers,
      });
      assert.equal(unlinked.statusCode, 204, unlinked.body);
      const moved = await linkEvm(claimant, account);
      assert.equal(moved.response.statusCode, 201, moved.response.body);
    });

    test('an EOA is one wallet on every EVM chain: its own subject gets 200, another subject 409', async () => {
      const [holder, claimant] = [await newSubject(), await newSubject()];
      const { account } = await linkEvm(holder, undefined, '1');
      const again = await linkEvm(holder, account, '8453');
      assert.equal(again.response.statusCode, 200, again.response.body);
      assert.equal(again.response.json().created, false);
      assert.equal(again.response.json().accountId, `eip155:1:${account.address}`);
      const elsewhere = await linkEvm(claimant, account, '8453');
      assert.equal(elsewhere.response.statusCode, 409, elsewhere.response.body);
      assert.equal(elsewhere.response.json().subjectId, holder);
    });

    test('the wallet directory finds a subject by any CAIP-10 spelling of a linked key', async () => {
      const subjectId = await newSubject();
      const { account } = await linkEvm(subjectId);
      const directory = moduleNamed<IdentityWalletsModule>('identity-wallets').directory;
      assert.deepEqual(await directory.accountsOf(org.orgId, subjectId), [`eip155:1:${account.address}`]);
      assert.equal(
        await directory.subjectOf(org.orgId, `eip155:10:${account.address.toLowerCase()}`),
        subjectId,
      );
      assert.equal(await directory.subjectOf(otherOrg.orgId, `eip155:1:${account.address}`), undefined);
      assert.equal(await directory.subjectOf(org.orgId, 'not a caip10'), undefined);
      const subjects = moduleNamed<IdentityModule>('identity').subjects;
      assert.equal((await subjects.findByAccount(org.orgId, `eip155:1:${account.address}`))?.id, subjectId);
    });

    test('unlinking a wallet the subject does not have answers 404', async () => {
      const subjectId = await newSubject();
      const response = await inject({
        method: 'DELETE',
        url: `/v1/identity/subjects/${subjectId}/wallets/eip155:1:${privateKeyToAccount(generatePrivateKey()).address}`,
        headers: org.headers,
      });
      assert.equal(response.statusCode, 404, response.body);
      assert.equal(response.json().code, 'WALLET_NOT_FOUND');
    });
  });

  describe('smart-contract wallets (ERC-1271) on anvil', { skip: skipWithoutAnvil }, () => {
    test('a deployed ERC-1271 wallet links with its owner’s signature, as a contract account of its chain', async () => {
      const owner = privateKeyToAccount(generatePrivateKey());
      const contract = compileContracts('test/TestERC1271Wallet.sol').TestERC1271Wallet!;
      const deployer = createWalletClient({
        account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEYS[0]),
        chain: foundry,
        transport: http(anvil!.url),
      });
      const hash = await deployer.deployContract({
        abi: contract.abi,
        bytecode: contract.bytecode,
        args: [owner.address],
      });
      const receipt = await createPublicClient({
        chain: foundry,
        transport: http(anvil!.url),
      }).waitForTransactionReceipt({
        hash,
      });
      const wallet = receipt.contractAddress as Address;

      const subjectId = await newSubject();
      const issued = await challenge(subjectId, {
        namespace: 'eip155',
        reference: String(ANVIL_CHAIN_ID),
        address: wallet,
      });
      const stranger = await link(subjectId, {
        challengeId: issued.id,
        signature: await privateKeyToAccount(generatePrivateKey()).signMessage({ message: issued.message }),
      });
      assert.equal(stranger.statusCode, 422, stranger.body);
      assert.equal(stranger.json().code, 'WALLET_PROOF_INVALID');
      const response = await link(subjectId, {
        challengeId: issued.id,
        signature: await owner.signMessage({ message: issued.message }),
      });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().kind, 'contract');
      // A contract account is per chain: the same address on another chain is not this link.
      const directory = moduleNamed<IdentityWalletsModule>('identity-wallets').directory;
      assert.equal(await directory.subjectOf(org.orgId, `eip155:${ANVIL_CHAIN_ID}:${wallet}`), subjectId);
      assert.equal(await directory.subjectOf(org.orgId, `eip155:1:${wallet}`), undefined);
    });
  });

  describe('validation, authentication and tenancy', () => {
    test('a bad namespace, reference or address is a 400 that names the field', async () => {
      const subjectId = await newSubject();
      const cases: [Record<string, unknown>, string][] = [
        [{ namespace: 'bitcoin', reference: '1', address: '0x00' }, '/namespace'],
        [{ namespace: 'eip155', reference: '1', address: 'cosmos1xyz' }, '/address'],
        [
          {
            namespace: 'eip155',
            reference: 'mainnet',
            address: privateKeyToAccount(generatePrivateKey()).address,
          },
          '/reference',
        ],
        [{ namespace: 'solana', reference: SOLANA_MAINNET, address: '0OIl' }, '/address'],
        [{ namespace: 'cosmos', reference: 'cosmoshub-4', address: 'cosmos1notbech32' }, '/address'],
        [{ namespace: 'eip155', reference: '1', address: '0x0', statement: 'two\nlines' }, '/statement'],
      ];
      for (const [payload, path] of cases) {
        const response = await inject({
          method: 'POST',
          url: `/v1/identity/subjects/${subjectId}/wallets/challenges`,
          headers: org.headers,
          payload,
        });
        assert.equal(response.statusCode, 400, `${JSON.stringify(payload)}: ${response.body}`);
        assert.equal(response.json().code, 'VALIDATION_FAILED');
        assert.ok(
          response.json().errors?.some((error: { path: string }) => error.path.startsWith(path)),
          `${JSON.stringify(payload)} names ${path}: ${response.body}`,
        );
      }
    });

    test('a Cosmos link without its public key, or a malformed signature, is a 400', async () => {
      const subjectId = await newSubject();
      const keypair = cosmosKeypair();
      const issued = await challenge(subjectId, {
        namespace: 'cosmos',
        reference: 'cosmoshub-4',
        address: keypair.address,
      });
      const noKey = await link(subjectId, {
        challengeId: issued.id,
        signature: keypair.signDoc(issued.signDoc),
      });
      assert.equal(noKey.statusCode, 400, noKey.body);
      assert.equal(noKey.json().errors[0].path, '/publicKey');
      const evm = await challenge(subjectId, {
        namespace: 'eip155',
        reference: '1',
        address: privateKeyToAccount(generatePrivateKey()).address,
      });
      const malformed = await link(subjectId, { challengeId: evm.id, signature: 'not hex' });
      assert.equal(malformed.statusCode, 400, malformed.body);
      assert.equal(malformed.json().errors[0].path, '/signature');
    });

    test('every route needs authentication', async () => {
      const subjectId = await newSubject();
      for (const [method, url] of [
        ['POST', `/v1/identity/subjects/${subjectId}/wallets/challenges`],
        ['POST', `/v1/identity/subjects/${subjectId}/wallets`],
        ['GET', `/v1/identity/subjects/${subjectId}/wallets`],
        [
          'DELETE',
          `/v1/identity/subjects/${subjectId}/wallets/eip155:1:0x0000000000000000000000000000000000000001`,
        ],
      ] as const) {
        const response = await inject({ method, url, payload: method === 'POST' ? {} : undefined });
        assert.equal(response.statusCode, 401, `${method} ${url}: ${response.body}`);
      }
    });

    test('a key with identity:read may list but not challenge, link or unlink', async () => {
      const reader = await createOrgWithApiKey(keel.app, { permissions: ['identity:read'] });
      const subjectId = await newSubject(reader.orgId);
      const list = await inject({
        method: 'GET',
        url: `/v1/identity/subjects/${subjectId}/wallets`,
        headers: reader.headers,
      });
      assert.equal(list.statusCode, 200, list.body);
      const write = await inject({
        method: 'POST',
        url: `/v1/identity/subjects/${subjectId}/wallets/challenges`,
        headers: reader.headers,
        payload: {
          namespace: 'eip155',
          reference: '1',
          address: privateKeyToAccount(generatePrivateKey()).address,
        },
      });
      assert.equal(write.statusCode, 403, write.body);
    });

    test('should not reach another org’s subject, wallets or challenges', async () => {
      const subjectId = await newSubject();
      const { account, issued } = await linkEvm(subjectId);
      const foreign = otherOrg.headers;
      const attempts = [
        inject({
          method: 'POST',
          url: `/v1/identity/subjects/${subjectId}/wallets/challenges`,
          headers: foreign,
          payload: { namespace: 'eip155', reference: '1', address: account.address },
        }),
        link(subjectId, { challengeId: issued.id, signature: '0x00' }, foreign),
        inject({ method: 'GET', url: `/v1/identity/subjects/${subjectId}/wallets`, headers: foreign }),
        inject({
          method: 'DELETE',
          url: `/v1/identity/subjects/${subjectId}/wallets/eip155:1:${account.address}`,
          headers: foreign,
        }),
      ];
      for (const response of await Promise.all(attempts)) {
        assert.equal(response.statusCode, 404, response.body);
        assert.equal(response.json().code, 'SUBJECT_NOT_FOUND');
      }
      // Its own subject cannot use this org's challenge either.
      const ownSubject = await newSubject(otherOrg.orgId);
      const signature = await account.signMessage({ message: issued.message });
      const stolen = await link(ownSubject, { challengeId: issued.id, signature }, foreign);
      assert.equal(stolen.statusCode, 422, stolen.body);
      assert.equal(stolen.json().code, 'WALLET_CHALLENGE_INVALID');
    });
  });
});
