import { after, before, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519';
import { encodeAbiParameters, toHex } from 'viem';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { startBrightIdStandIn, startPassportStandIn, startWorldIdStandIn } from './testing/stand-ins.ts';

let database: TestDatabase;
let keel: TestApp;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await keel.close();
  await database.drop();
});
test('perf', async () => {
  const [w, p, b] = await Promise.all([
    startWorldIdStandIn({ apps: { app_x: { a: 0 } } }),
    startPassportStandIn({ apiKey: 'k', scorerIds: ['1'], defaultScore: 25 }),
    startBrightIdStandIn({
      secretKey: ed25519.utils.randomPrivateKey(),
      apps: { keel: ['BrightID'] },
      everyoneUnique: true,
    }),
  ]);
  w.acceptAll(true);
  keel = await buildTestApp(database, {
    config: { webhooks: { ssrfAllowlist: ['127.0.0.1'] }, database: { poolSize: 10 } } as never,
  });
  const org = await createOrgWithApiKey(keel.app);
  const put = (provider: string, body: unknown) =>
    keel.app.inject({
      method: 'PUT',
      url: `/v1/identity/providers/${provider}`,
      headers: org.headers,
      payload: body as object,
    });
  await put('world_id', { baseUrl: w.url, appId: 'app_x', action: 'a' });
  await put('passport', { baseUrl: p.url, apiKey: 'k', scorerId: '1' });
  await put('brightid', { baseUrl: `${b.url}/brightid/v6`, app: 'keel', nodePublicKey: b.publicKey });
  const body = (n: number) => {
    const account = toHex(0xbe0c4000000000n + BigInt(n), { size: 20 });
    return {
      account,
      worldId: {
        proof: encodeAbiParameters([{ type: 'uint256[8]' }], [[1n, 2n, 3n, 4n, 5n, 6n, 7n, BigInt(n)]]),
        merkleRoot: '0x2a',
        nullifierHash: toHex(0xf00d0000n + BigInt(n)),
        verificationLevel: 'orb',
        signal: account,
      },
    };
  };
  const one = async (n: number) => {
    const t = performance.now();
    const r = await keel.app.inject({
      method: 'POST',
      url: '/v1/verifications',
      headers: org.headers,
      payload: body(n),
    });
    if (r.statusCode !== 201) throw new Error(r.body);
    return performance.now() - t;
  };
  for (let i = 0; i < 50; i++) await one(i);
  const miss: number[] = [];
  for (let i = 100; i < 300; i++) miss.push(await one(i));
  const hit: number[] = [];
  for (let i = 100; i < 300; i++) hit.push(await one(i));
  const q = (a: number[], p: number) => a.sort((x, y) => x - y)[Math.floor(a.length * p)]!.toFixed(2);
  console.log(
    `sequential miss p50 ${q(miss, 0.5)} p99 ${q(miss, 0.99)}; hit p50 ${q(hit, 0.5)} p99 ${q(hit, 0.99)}`,
  );
  // where does time go: a bare authenticated GET
  const g: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await keel.app.inject({ method: 'GET', url: '/v1/identity/policy', headers: org.headers });
    g.push(performance.now() - t);
  }
  console.log(`GET policy p50 ${q(g, 0.5)}`);
  await Promise.all([w.close(), p.close(), b.close()]);
});
