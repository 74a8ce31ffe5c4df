import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import {
  type Address,
  createPublicClient,
  createWalletClient,
  encodeFunctionData,
  type Hex,
  http,
  keccak256,
  serializeErc6492Signature,
  toHex,
} from 'viem';
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { createSiweMessage } from 'viem/siwe';
import {
  bearer,
  createOrgWithApiKey,
  createUserSession,
  FIXTURE_PASSWORD,
} from '../../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '../../../../test/harness.ts';
import { type CompiledContract, compileContracts } from '../../../../test/solidity.ts';
import {
  ANVIL_DEV_PRIVATE_KEYS,
  type Anvil,
  anvilUnavailable,
  startAnvil,
} from '../../../infra/chains/index.ts';
import { manualClock } from '../../../infra/clock.ts';
import { totpCodeAt } from '../two-factor/domain/totp.ts';
import { SIWE_NONCE_TTL_MS } from './domain/siwe.ts';

/** Tests sign in with messages for the default PUBLIC_URL, http://localhost:8080. */
const DOMAIN = 'localhost:8080';
const URI = 'http://localhost:8080';
const ANVIL_CHAIN_ID = foundry.id;
const skipWithoutAnvil = anvilUnavailable();

describe('sign-in with Ethereum (EIP-4361)', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let anvil: Anvil | undefined;
  const clock = manualClock('2026-11-21T12:00:00Z');

  before(async () => {
    database = await createTestDatabase();
    if (!skipWithoutAnvil) anvil = await startAnvil({ chainId: ANVIL_CHAIN_ID });
    keel = await buildTestApp(database, {
      clock,
      config: anvil ? { chains: { rpcUrls: [{ chainId: ANVIL_CHAIN_ID, url: anvil.url }] } } : {},
    });
  });
  after(async () => {
    await keel.close();
    await anvil?.stop();
    await database.drop();
  });

  const inject = (options: InjectOptions) => keel.app.inject(options);

  async function nonce(): Promise<string> {
    const response = await inject({ method: 'POST', url: '/v1/auth/wallet/nonce' });
    assert.equal(response.statusCode, 201, response.body);
    return response.json().nonce;
  }

  function message(
    address: Address,
    nonceValue: string,
    overrides: Partial<Parameters<typeof createSiweMessage>[0]> = {},
  ): string {
    return createSiweMessage({
      domain: DOMAIN,
      address,
      statement: 'Sign in to Keel.',
      uri: URI,
      version: '1',
      chainId: 1,
      nonce: nonceValue,
      issuedAt: clock.now(),
      ...overrides,
    });
  }

  async function signed(
    account: PrivateKeyAccount,
    overrides: Partial<Parameters<typeof createSiweMessage>[0]> = {},
  ) {
    const text = message(account.address, await nonce(), overrides);
    return { message: text, signature: await account.signMessage({ message: text }) };
  }

  const login = (body: { message: string; signature: string }) =>
    inject({ method: 'POST', url: '/v1/auth/wallet/login', payload: body });

  test('a nonce comes with the domain and URI to sign for', async () => {
    const response = await inject({ method: 'POST', url: '/v1/auth/wallet/nonce' });
    assert.equal(response.statusCode, 201);
    const body = response.json();
    assert.match(body.nonce, /^[0-9A-Za-z]{24}$/);
    assert.equal(body.domain, DOMAIN);
    assert.equal(body.uri, URI);
    assert.equal(new Date(body.expiresAt).getTime() - new Date(body.issuedAt).getTime(), SIWE_NONCE_TTL_MS);
  });

  test('a new EOA signs in: a user without email is created, owning the wallet, with a session', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const response = await login(await signed(account));
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.user.email, null);
    assert.equal(body.orgId, null);
    assert.equal(body.session.method, 'siwe');
    assert.match(String(response.headers['set-cookie']), /^keel_session=keel_sess_/);
    const wallets = await inject({ method: 'GET', url: '/v1/me/wallets', headers: bearer(body.token) });
    assert.equal(wallets.statusCode, 200);
    assert.deepEqual(
      wallets.json().data.map((w: Record<string, unknown>) => [w.accountId, w.kind, w.address]),
      [[`eip155:1:${account.address}`, 'eoa', account.address]],
    );
  });

  test('the same EOA signing on another chain is the same user', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const first = (await login(await signed(account))).json();
    const second = await login(await signed(account, { chainId: 8453 }));
    assert.equal(second.statusCode, 200);
    assert.equal(second.json().user.id, first.user.id);
    const wallets = await inject({ method: 'GET', url: '/v1/me/wallets', headers: bearer(first.token) });
    assert.equal(wallets.json().data.length, 1, 'an EOA is one wallet on every chain');
  });

  test('a nonce works once', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const body = await signed(account);
    assert.equal((await login(body)).statusCode, 200);
    const replay = await login(body);
    assert.equal(replay.statusCode, 401);
    assert.equal(replay.json().code, 'SIWE_NONCE_INVALID');
  });

  test('a nonce the server never issued, or one past its 10 minutes, is refused', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const invented = message(account.address, 'madeUpNonce123456789');
    const refused = await login({
      message: invented,
      signature: await account.signMessage({ message: invented }),
    });
    assert.equal(refused.json().code, 'SIWE_NONCE_INVALID');

    const issued = await nonce();
    clock.advance(SIWE_NONCE_TTL_MS + 1);
    const late = message(account.address, issued);
    const expired = await login({ message: late, signature: await account.signMessage({ message: late }) });
    assert.equal(expired.statusCode, 401);
    assert.equal(expired.json().code, 'SIWE_NONCE_INVALID');
  });

  test('a message for another site (domain, URI or scheme) is refused before its nonce is used', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const issued = await nonce();
    for (const overrides of [
      { domain: 'evil.example' },
      { uri: 'https://evil.example/login' },
      { scheme: 'https' },
    ] as const) {
      const text = message(account.address, issued, overrides);
      const response = await login({
        message: text,
        signature: await account.signMessage({ message: text }),
      });
      assert.equal(response.statusCode, 400, JSON.stringify(overrides));
      assert.equal(response.json().code, 'SIWE_MESSAGE_INVALID');
    }
    const text = message(account.address, issued);
    assert.equal(
      (await login({ message: text, signature: await account.signMessage({ message: text }) })).statusCode,
      200,
    );
  });

  test('time fields are checked: expired, not yet valid, issued in the future or too long ago', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const now = clock.now().getTime();
    for (const [overrides, pattern] of [
      [{ expirationTime: new Date(now - 1_000) }, /expired/],
      [{ notBefore: new Date(now + 10 * 60_000) }, /not valid yet/],
      [{ issuedAt: new Date(now + 10 * 60_000) }, /future/],
      [{ issuedAt: new Date(now - 60 * 60_000) }, /too old/],
    ] as const) {
      const response = await login(await signed(account, overrides));
      assert.equal(response.statusCode, 400);
      assert.equal(response.json().code, 'SIWE_MESSAGE_INVALID');
      assert.match(response.json().detail, pattern);
    }
    const valid = await login(await signed(account, { expirationTime: new Date(now + 60_000) }));
    assert.equal(valid.statusCode, 200);
  });

  test('malformed messages and signatures answer 400', async () => {
    const notSiwe = await login({ message: 'please let me in', signature: '0x1234' });
    assert.equal(notSiwe.statusCode, 400);
    assert.equal(notSiwe.json().code, 'SIWE_MESSAGE_INVALID');
    const invalid = await inject({
      method: 'POST',
      url: '/v1/auth/wallet/login',
      payload: { message: '', signature: 'not hex' },
    });
    assert.equal(invalid.statusCode, 400);
    assert.deepEqual(
      invalid
        .json()
        .errors.map((e: { path: string }) => e.path)
        .sort(),
      ['/message', '/signature'],
    );
  });

  test('a signature that is not the address’s, on a chain without an RPC URL, cannot be checked (422)', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const other = privateKeyToAccount(generatePrivateKey());
    const text = message(account.address, await nonce());
    const response = await login({ message: text, signature: await other.signMessage({ message: text }) });
    assert.equal(response.statusCode, 422);
    assert.equal(response.json().code, 'WALLET_CHAIN_UNSUPPORTED');
  });

  test('a signed-in user links a wallet, which then signs in to that user', async () => {
    const user = await createUserSession(keel.app);
    const account = privateKeyToAccount(generatePrivateKey());
    const linked = await inject({
      method: 'POST',
      url: '/v1/me/wallets',
      headers: user.headers,
      payload: await signed(account),
    });
    assert.equal(linked.statusCode, 201, linked.body);
    assert.equal(linked.json().accountId, `eip155:1:${account.address}`);
    const again = await inject({
      method: 'POST',
      url: '/v1/me/wallets',
      headers: user.headers,
      payload: await signed(account),
    });
    assert.equal(again.statusCode, 200, 'linking a wallet you already have is a no-op');
    const signIn = await login(await signed(account));
    assert.equal(signIn.json().user.id, user.userId);
    assert.equal(signIn.json().user.email, user.email);
  });

  test('a wallet that signs in to one user cannot be linked by another', async () => {
    const alice = await createUserSession(keel.app);
    const bob = await createUserSession(keel.app);
    const account = privateKeyToAccount(generatePrivateKey());
    await inject({
      method: 'POST',
      url: '/v1/me/wallets',
      headers: alice.headers,
      payload: await signed(account),
    });
    const stolen = await inject({
      method: 'POST',
      url: '/v1/me/wallets',
      headers: bob.headers,
      payload: await signed(account),
    });
    assert.equal(stolen.statusCode, 409);
    assert.equal(stolen.json().code, 'WALLET_ALREADY_LINKED');
  });

  test('linking needs a session: 401 without one, 403 for an API key', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const anonymous = await inject({ method: 'POST', url: '/v1/me/wallets', payload: await signed(account) });
    assert.equal(anonymous.statusCode, 401);
    const { headers } = await createOrgWithApiKey(keel.app);
    const withKey = await inject({ method: 'GET', url: '/v1/me/wallets', headers });
    assert.equal(withKey.statusCode, 403);
  });

  test('unlinking: never another user’s wallet, and never the last way to sign in', async () => {
    const walletOnly = (await login(await signed(privateKeyToAccount(generatePrivateKey())))).json();
    const walletOnlyHeaders = bearer(walletOnly.token);
    const [own] = (await inject({ method: 'GET', url: '/v1/me/wallets', headers: walletOnlyHeaders })).json()
      .data;
    const last = await inject({
      method: 'DELETE',
      url: `/v1/me/wallets/${own.id}`,
      headers: walletOnlyHeaders,
    });
    assert.equal(last.statusCode, 409);
    assert.equal(last.json().code, 'LAST_SIGN_IN_METHOD');

    const other = await createUserSession(keel.app);
    const foreign = await inject({
      method: 'DELETE',
      url: `/v1/me/wallets/${own.id}`,
      headers: other.headers,
    });
    assert.equal(foreign.statusCode, 404, 'another user’s wallet does not exist for you');

    const account = privateKeyToAccount(generatePrivateKey());
    const linked = (
      await inject({
        method: 'POST',
        url: '/v1/me/wallets',
        headers: other.headers,
        payload: await signed(account),
      })
    ).json();
    const unlinked = await inject({
      method: 'DELETE',
      url: `/v1/me/wallets/${linked.id}`,
      headers: other.headers,
    });
    assert.equal(unlinked.statusCode, 204, 'a user with a password may unlink their only wallet');
    const signIn = await login(await signed(account));
    assert.notEqual(
      signIn.json().user.id,
      other.userId,
      'the unlinked wallet no longer signs in to that user',
    );
  });

  test('a wallet user with 2FA on gets mfa_required, then a session with the code', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const first = (await login(await signed(account))).json();
    const headers = bearer(first.token);
    const { secret } = (await inject({ method: 'POST', url: '/v1/me/two-factor/totp', headers })).json();
    clock.advance(30_000);
    const confirmed = await inject({
      method: 'POST',
      url: '/v1/me/two-factor/totp/confirm',
      headers,
      payload: { code: await totpCodeAt(secret, clock.now()) },
    });
    assert.equal(confirmed.statusCode, 200);
    const second = await login(await signed(account));
    assert.equal(second.json().status, 'mfa_required');
    clock.advance(30_000);
    const completed = await inject({
      method: 'POST',
      url: '/v1/auth/login/two-factor',
      payload: { mfaToken: second.json().mfaToken, code: await totpCodeAt(secret, clock.now()) },
    });
    assert.equal(completed.statusCode, 200);
    assert.equal(completed.json().session.method, 'siwe');
    assert.equal(completed.json().user.id, first.user.id);
  });

  test('a user who also has a password keeps it: wallet sign-in signs in to the same account', async () => {
    const user = await createUserSession(keel.app);
    const account = privateKeyToAccount(generatePrivateKey());
    await inject({
      method: 'POST',
      url: '/v1/me/wallets',
      headers: user.headers,
      payload: await signed(account),
    });
    const byPassword = await inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: user.email, password: FIXTURE_PASSWORD },
    });
    assert.equal(byPassword.json().user.id, (await login(await signed(account))).json().user.id);
  });

  describe('smart-contract wallets on anvil', { skip: skipWithoutAnvil }, () => {
    let factory: Address;
    let contracts: Record<string, CompiledContract>;
    const owner = privateKeyToAccount(generatePrivateKey());

    before(async () => {
      contracts = compileContracts('test/TestERC1271Wallet.sol');
      const deployer = createWalletClient({
        account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEYS[0]),
        chain: foundry,
        transport: http(anvil!.url),
      });
      const publicClient = createPublicClient({ chain: foundry, transport: http(anvil!.url) });
      const hash = await deployer.deployContract({
        abi: contracts.TestERC1271WalletFactory!.abi,
        bytecode: contracts.TestERC1271WalletFactory!.bytecode,
      });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      factory = receipt.contractAddress!;
    });

    const publicClient = () => createPublicClient({ chain: foundry, transport: http(anvil!.url) });
    const walletAddress = (salt: Hex) =>
      publicClient().readContract({
        address: factory,
        abi: contracts.TestERC1271WalletFactory!.abi,
        functionName: 'addressOf',
        args: [owner.address, salt],
      }) as Promise<Address>;
    const deployCall = (salt: Hex) =>
      encodeFunctionData({
        abi: contracts.TestERC1271WalletFactory!.abi,
        functionName: 'deploy',
        args: [owner.address, salt],
      });

    async function deployWallet(salt: Hex): Promise<Address> {
      const deployer = createWalletClient({
        account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEYS[0]),
        chain: foundry,
        transport: http(anvil!.url),
      });
      const hash = await deployer.sendTransaction({ to: factory, data: deployCall(salt) });
      await publicClient().waitForTransactionReceipt({ hash });
      const address = await walletAddress(salt);
      assert.notEqual(await publicClient().getCode({ address }), undefined, 'the wallet is deployed');
      return address;
    }

    test('a deployed ERC-1271 wallet signs in with its owner’s signature', async () => {
      const wallet = await deployWallet(keccak256(toHex('deployed')));
      const text = message(wallet, await nonce(), { chainId: ANVIL_CHAIN_ID });
      const response = await login({ message: text, signature: await owner.signMessage({ message: text }) });
      assert.equal(response.statusCode, 200, response.body);
      const wallets = await inject({
        method: 'GET',
        url: '/v1/me/wallets',
        headers: bearer(response.json().token),
      });
      assert.deepEqual(
        wallets.json().data.map((w: Record<string, unknown>) => [w.accountId, w.kind]),
        [[`eip155:${ANVIL_CHAIN_ID}:${wallet}`, 'contract']],
      );
    });

    test('an ERC-1271 wallet refuses a signature by anyone but its owner, without burning the nonce', async () => {
      const wallet = await deployWallet(keccak256(toHex('refuses')));
      const text = message(wallet, await nonce(), { chainId: ANVIL_CHAIN_ID });
      const intruder = privateKeyToAccount(generatePrivateKey());
      const refused = await login({
        message: text,
        signature: await intruder.signMessage({ message: text }),
      });
      assert.equal(refused.statusCode, 401);
      assert.equal(refused.json().code, 'WALLET_SIGNATURE_INVALID');
      const accepted = await login({ message: text, signature: await owner.signMessage({ message: text }) });
      assert.equal(accepted.statusCode, 200, 'the nonce was not used by the forged attempt');
    });

    test('a wallet not deployed yet signs in with an ERC-6492 signature, and stays undeployed', async () => {
      const salt = keccak256(toHex('counterfactual'));
      const wallet = await walletAddress(salt);
      assert.equal(await publicClient().getCode({ address: wallet }), undefined, 'not deployed');
      const text = message(wallet, await nonce(), { chainId: ANVIL_CHAIN_ID });
      const signature = serializeErc6492Signature({
        address: factory,
        data: deployCall(salt),
        signature: await owner.signMessage({ message: text }),
      });
      const response = await login({ message: text, signature });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(
        await publicClient().getCode({ address: wallet }),
        undefined,
        'checking it deployed nothing',
      );
      const wallets = await inject({
        method: 'GET',
        url: '/v1/me/wallets',
        headers: bearer(response.json().token),
      });
      assert.equal(wallets.json().data[0].kind, 'contract');
    });

    test('a contract account is known by chain and address: again on its chain is the same user', async () => {
      const wallet = await deployWallet(keccak256(toHex('per-chain')));
      const text = message(wallet, await nonce(), { chainId: ANVIL_CHAIN_ID });
      const first = await login({ message: text, signature: await owner.signMessage({ message: text }) });
      const again = message(wallet, await nonce(), { chainId: ANVIL_CHAIN_ID });
      const second = await login({ message: again, signature: await owner.signMessage({ message: again }) });
      assert.equal(second.json().user.id, first.json().user.id);
      // On a chain with no RPC URL the same contract cannot be checked, so it cannot sign in there.
      const elsewhere = message(wallet, await nonce(), { chainId: 999 });
      const refused = await login({
        message: elsewhere,
        signature: await owner.signMessage({ message: elsewhere }),
      });
      assert.equal(refused.statusCode, 422);
      assert.equal(refused.json().code, 'WALLET_CHAIN_UNSUPPORTED');
    });
  });
});
