import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Anvil, anvilUnavailable, createChainRegistry, startAnvil } from './index.ts';

describe('chains', { skip: anvilUnavailable() }, () => {
  let anvil: Anvil;

  before(async () => {
    anvil = await startAnvil({ chainId: 8453 });
  });
  after(async () => {
    await anvil?.stop();
  });

  test('anvil runs on a free loopback port with the requested chain id', () => {
    assert.match(anvil.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(anvil.chainId, 8453);
  });

  test('the registry has a client per configured chain id that talks to that chain', async () => {
    const chains = createChainRegistry([{ chainId: 8453, url: anvil.url }]);
    assert.deepEqual(chains.chainIds, [8453]);
    const client = chains.client(8453);
    assert.ok(client);
    assert.equal(await client.getChainId(), 8453);
    assert.equal(typeof (await client.getBlockNumber()), 'bigint');
  });

  test('a chain without an RPC URL has no client', () => {
    const chains = createChainRegistry([{ chainId: 8453, url: anvil.url }]);
    assert.equal(chains.client(1), undefined);
  });

  test('stop ends the anvil process', async () => {
    const second = await startAnvil();
    await second.stop();
    await assert.rejects(fetch(second.url, { method: 'POST', body: '{}' }));
  });
});
