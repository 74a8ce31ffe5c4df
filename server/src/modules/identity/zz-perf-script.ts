import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519';
import pg from 'pg';
import { encodeAbiParameters, toHex } from 'viem';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildApp } from '../../app.ts';
import { configWith } from '../../config.ts';
import { migrate } from '../../infra/db/migrate.ts';
import { createLogger } from '../../infra/observability/logger.ts';
import { createRuntime } from '../../infra/runtime.ts';
import { startBrightIdStandIn, startPassportStandIn, startWorldIdStandIn } from './testing/stand-ins.ts';

const admin = 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `keel_perf_${randomBytes(3).toString('hex')}`;
const c = new pg.Client(admin); await c.connect(); await c.query(`create database ${name}`); await c.end();
const url = `postgres://postgres@127.0.0.1:5432/${name}`;
const log = createLogger({ level: 'silent', pretty: false });
const pool = new pg.Pool({ connectionString: url, max: 3 }); await migrate(pool, log); await pool.end();
const config = configWith({ database: { url, poolSize: 10, migrateOnStart: false }, log: { level: 'silent', pretty: false }, dataDir: '/nonexistent', masterKey: 'a'.repeat(64), redis: { url: 'redis://127.0.0.1:6379' }, webhooks: { ssrfAllowlist: ['127.0.0.1'] }, rateLimit: { ipPerMinute: 1e9, keyPerMinute: 1e9, orgPerMinute: 1e9, mode: 'exact', onRedisFailure: 'open' } } as never);
const runtime = await createRuntime(config, { log });
const app = await buildApp(config, { runtime });
const [w, p, b] = await Promise.all([
  startWorldIdStandIn({ apps: { app_x: { a: 0 } } }),
  startPassportStandIn({ apiKey: 'k', scorerIds: ['1'], defaultScore: 25 }),
  startBrightIdStandIn({ secretKey: ed25519.utils.randomPrivateKey(), apps: { keel: ['BrightID'] }, everyoneUnique: true }),
]);
w.acceptAll(true);
const org = await createOrgWithApiKey(app);
const put = (provider: string, body: unknown) => app.inject({ method: 'PUT', url: `/v1/identity/providers/${provider}`, headers: org.headers, payload: body as object });
await put('world_id', { baseUrl: w.url, appId: 'app_x', action: 'a' });
await put('passport', { baseUrl: p.url, apiKey: 'k', scorerId: '1' });
await put('brightid', { baseUrl: `${b.url}/brightid/v6`, app: 'keel', nodePublicKey: b.publicKey });
const body = (n: number) => {
  const account = toHex(0xbe0c4000000000n + BigInt(n), { size: 20 });
  return { account, worldId: { proof: encodeAbiParameters([{ type: 'uint256[8]' }], [[1n, 2n, 3n, 4n, 5n, 6n, 7n, BigInt(n)]]), merkleRoot: '0x2a', nullifierHash: toHex(0xf00d0000n + BigInt(n)), verificationLevel: 'orb', signal: account } };
};
const one = async (n: number) => {
  const t = performance.now();
  const r = await app.inject({ method: 'POST', url: '/v1/verifications', headers: org.headers, payload: body(n) });
  if (r.statusCode !== 201) throw new Error(r.body);
  return performance.now() - t;
};
const q = (a: number[], x: number) => [...a].sort((i, j) => i - j)[Math.floor(a.length * x)]!.toFixed(2);
for (let i = 0; i < 100; i++) await one(i);
const counts = new Map<string, number>();
const original = pg.Client.prototype.query;
(pg.Client.prototype as any).query = function (this: unknown, ...args: any[]) {
  const text = typeof args[0] === 'string' ? args[0] : args[0]?.text;
  const key = String(text).replace(/\s+/g, ' ').slice(0, 90);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return (original as any).apply(this, args);
};
await one(5);
(pg.Client.prototype as any).query = original;
for (const [k, v] of counts) console.log(v, k);
const hit: number[] = [];
for (let r = 0; r < 5; r++) for (let i = 0; i < 100; i++) hit.push(await one(i));
console.log(`hit sequential p50 ${q(hit, 0.5)} p99 ${q(hit, 0.99)}`);
const t = performance.now();
let n = 0;
await Promise.all(Array.from({ length: 20 }, async () => { while (n < 1000) { await one(n++ % 100); } }));
console.log(`hit x20: ${(1000 / ((performance.now() - t) / 1000)).toFixed(0)}/s`);
await app.close(); await runtime.close();
await Promise.all([w.close(), p.close(), b.close()]);
const d = new pg.Client(admin); await d.connect(); await d.query(`drop database ${name} with (force)`); await d.end();
