import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1';
import { controllerOf, parseAccount, possibleController } from './caip10.ts';
import { adr036SignDoc, cosmosAddressOf, serializeSignDoc, verifyAdr036 } from './cosmos.ts';

describe('ADR-036 sign docs', () => {
  test('serialize as amino JSON: keys sorted at every level, no whitespace', () => {
    const doc = adr036SignDoc('cosmos1abc', new TextEncoder().encode('hello'));
    assert.equal(
      new TextDecoder().decode(serializeSignDoc(doc)),
      '{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"",' +
        '"msgs":[{"type":"sign/MsgSignData","value":{"data":"aGVsbG8=","signer":"cosmos1abc"}}],"sequence":"0"}',
    );
  });

  test('escape &, < and > as Go and cosmjs do', () => {
    assert.equal(
      new TextDecoder().decode(serializeSignDoc({ memo: 'a&b<c>' })),
      '{"memo":"a\\u0026b\\u003cc\\u003e"}',
    );
  });

  test('a signature verifies only with the key of the signer address, over that message', () => {
    const privateKey = secp256k1.utils.randomPrivateKey();
    const publicKey = secp256k1.getPublicKey(privateKey, true);
    const signer = cosmosAddressOf(publicKey, 'osmo');
    assert.match(signer, /^osmo1/);
    const sign = (message: string) =>
      secp256k1
        .sign(
          createHash('sha256')
            .update(serializeSignDoc(adr036SignDoc(signer, new TextEncoder().encode(message))))
            .digest(),
          privateKey,
        )
        .toCompactRawBytes();
    assert.deepEqual(verifyAdr036({ signer, message: 'hi', signature: sign('hi'), publicKey }), { ok: true });
    assert.equal(verifyAdr036({ signer, message: 'hi', signature: sign('ho'), publicKey }).ok, false);
    const other = cosmosAddressOf(secp256k1.getPublicKey(secp256k1.utils.randomPrivateKey(), true), 'osmo');
    assert.equal(verifyAdr036({ signer: other, message: 'hi', signature: sign('hi'), publicKey }).ok, false);
  });
});

describe('CAIP-10 accounts', () => {
  test('parse to a canonical spelling: EIP-55 for EVM, lower case for bech32', () => {
    const evm = parseAccount('eip155:1:0xab5801a7d398351b8be11c439e05c5b3259aec9b');
    assert.deepEqual(evm.ok && evm.value.address, '0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B');
    for (const bad of [
      'eip155:01:0xab5801a7d398351b8be11c439e05c5b3259aec9b',
      'bip122:1:x',
      'eip155:1',
      'solana:short:abc',
    ]) {
      assert.equal(parseAccount(bad).ok, false, bad);
    }
  });

  test('the key behind an EOA is the same on every EVM chain; a contract account has none', () => {
    const one = parseAccount('eip155:1:0xab5801a7d398351b8be11c439e05c5b3259aec9b');
    const base = parseAccount('eip155:8453:0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B');
    assert.ok(one.ok && base.ok);
    assert.equal(controllerOf(one.value, 'eoa'), possibleController(base.value));
    assert.equal(controllerOf(one.value, 'contract'), null);
  });
});
