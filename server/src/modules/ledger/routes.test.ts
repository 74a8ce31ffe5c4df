import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { newId } from '../../infra/ids.ts';
import { MAX_BULK_TRANSFERS } from './schemas.ts';

type Caller = Awaited<ReturnType<typeof createOrgWithApiKey>>;

describe('ledger routes', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let owner: Caller;
  let reader: Caller;
  let stranger: Caller;
  let bank: string;
  let wallet: string;

  const call = (
    method: 'GET' | 'POST',
    url: string,
    caller: Caller | undefined,
    payload?: unknown,
    headers = {},
  ) =>
    keel.app.inject({
      method,
      url,
      headers: { ...caller?.headers, ...headers },
      ...(payload !== undefined && { payload: payload as object }),
    });

  before(async () => {
    database = await createTestDatabase();
    keel = await buildTestApp(database);
    owner = await createOrgWithApiKey(keel.app, { permissions: ['ledger:read', 'ledger:write'] });
    reader = await createOrgWithApiKey(keel.app, { permissions: ['ledger:read'] });
    stranger = await createOrgWithApiKey(keel.app, { permissions: ['ledger:read', 'ledger:write'] });
    assert.equal((await call('POST', '/v1/ledger/assets', owner, { code: 'USD', scale: 2 })).statusCode, 201);
    bank = (await call('POST', '/v1/ledger/accounts', owner, { asset: 'USD', name: 'bank' })).json().id;
    wallet = (
      await call('POST', '/v1/ledger/accounts', owner, {
        asset: 'USD',
        name: 'wallet',
        debitsMustNotExceedCredits: true,
      })
    ).json().id;
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  const send = (amount: string, extra: object = {}, caller = owner, headers = {}) =>
    call(
      'POST',
      '/v1/ledger/transfers',
      caller,
      { debitAccountId: bank, creditAccountId: wallet, asset: 'USD', amount, ...extra },
      headers,
    );

  describe('authentication and authorization', () => {
    const routes: ['GET' | 'POST', string, boolean][] = [
      ['POST', '/v1/ledger/assets', true],
      ['GET', '/v1/ledger/assets', false],
      ['GET', '/v1/ledger/assets/USD', false],
      ['POST', '/v1/ledger/accounts', true],
      ['GET', '/v1/ledger/accounts', false],
      ['GET', `/v1/ledger/accounts/${newId('acc')}`, false],
      ['GET', `/v1/ledger/accounts/${newId('acc')}/balance`, false],
      ['GET', `/v1/ledger/accounts/${newId('acc')}/transfers`, false],
      ['POST', '/v1/ledger/transfers', true],
      ['POST', '/v1/ledger/transfers/bulk', true],
      ['GET', `/v1/ledger/transfers/${newId('trf')}`, false],
      ['GET', '/v1/ledger/transfers/by-reference/x', false],
      ['POST', '/v1/ledger/transactions', true],
      ['GET', `/v1/ledger/transactions/${newId('txn')}`, false],
      ['GET', '/v1/ledger/reconciliation', false],
    ];

    test('every ledger route answers 401 without credentials', async () => {
      for (const [method, url] of routes) {
        const response = await call(method, url, undefined, method === 'POST' ? {} : undefined);
        assert.equal(response.statusCode, 401, `${method} ${url}`);
        assert.equal(response.json().code, 'UNAUTHENTICATED');
      }
    });

    test('every writing route answers 403 to a key with ledger:read only', async () => {
      for (const [method, url, writes] of routes) {
        if (!writes) continue;
        const response = await call(method, url, reader, {});
        assert.equal(response.statusCode, 403, `${method} ${url}`);
      }
    });
  });

  describe('assets', () => {
    test('creates, lists and gets an asset; the same code again answers 200, another scale 409', async () => {
      assert.equal(
        (await call('POST', '/v1/ledger/assets', owner, { code: 'ETH', scale: 18 })).statusCode,
        201,
      );
      assert.equal(
        (await call('POST', '/v1/ledger/assets', owner, { code: 'ETH', scale: 18 })).statusCode,
        200,
      );
      const conflict = await call('POST', '/v1/ledger/assets', owner, { code: 'ETH', scale: 6 });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().code, 'ASSET_EXISTS');
      const list = await call('GET', '/v1/ledger/assets?limit=1', owner);
      assert.equal(list.json().data.length, 1);
      const next = await call('GET', `/v1/ledger/assets?limit=1&cursor=${list.json().nextCursor}`, owner);
      assert.notEqual(next.json().data[0].code, list.json().data[0].code);
      assert.equal((await call('GET', '/v1/ledger/assets/ETH', reader)).statusCode, 404);
      assert.deepEqual((await call('GET', '/v1/ledger/assets/ETH', owner)).json().scale, 18);
    });

    test('rejects a bad code and scale, naming both fields', async () => {
      const response = await call('POST', '/v1/ledger/assets', owner, { code: 'usd', scale: 40 });
      assert.equal(response.statusCode, 400);
      const paths = response
        .json()
        .errors.map((error: { path: string }) => error.path)
        .sort();
      assert.deepEqual(paths, ['/code', '/scale']);
    });

    test("another org's asset answers 404", async () => {
      assert.equal((await call('GET', '/v1/ledger/assets/USD', stranger)).statusCode, 404);
    });
  });

  describe('accounts', () => {
    test('creates an account and answers it with zero balances; a retry with its id answers 200', async () => {
      const id = newId('acc');
      const body = { id, asset: 'USD', name: 'savings', code: 'savings', metadata: { owner: 'alice' } };
      const created = await call('POST', '/v1/ledger/accounts', owner, body);
      assert.equal(created.statusCode, 201);
      assert.equal(created.json().balance.available, '0');
      assert.equal((await call('POST', '/v1/ledger/accounts', owner, body)).statusCode, 200);
      const conflict = await call('POST', '/v1/ledger/accounts', owner, { ...body, name: 'other' });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().code, 'ACCOUNT_ID_CONFLICT');
      assert.equal((await call('GET', `/v1/ledger/accounts/${id}`, reader)).statusCode, 404);
      assert.equal((await call('GET', `/v1/ledger/accounts/${id}`, owner)).json().name, 'savings');
    });

    test('rejects an account with both limit flags, an unknown field and an unknown asset', async () => {
      const invalid = await call('POST', '/v1/ledger/accounts', owner, {
        asset: 'USD',
        name: 'x',
        debitsMustNotExceedCredits: true,
        creditsMustNotExceedDebits: true,
      });
      assert.equal(invalid.statusCode, 400);
      assert.equal(invalid.json().errors[0].path, '/creditsMustNotExceedDebits');
      const unknownField = await call('POST', '/v1/ledger/accounts', owner, {
        asset: 'USD',
        name: 'x',
        colour: 1,
      });
      assert.equal(unknownField.statusCode, 400);
      const noAsset = await call('POST', '/v1/ledger/accounts', owner, { asset: 'JPY', name: 'x' });
      assert.equal(noAsset.statusCode, 404);
      assert.equal(noAsset.json().code, 'ASSET_NOT_FOUND');
    });

    test('lists accounts page by page, filtered by code', async () => {
      const first = await call('GET', '/v1/ledger/accounts?limit=2', owner);
      assert.equal(first.statusCode, 200);
      assert.equal(first.json().data.length, 2);
      const second = await call(
        'GET',
        `/v1/ledger/accounts?limit=2&cursor=${first.json().nextCursor}`,
        owner,
      );
      const ids = [...first.json().data, ...second.json().data].map((account: { id: string }) => account.id);
      assert.equal(new Set(ids).size, ids.length);
      const filtered = await call('GET', '/v1/ledger/accounts?code=savings', owner);
      assert.ok(filtered.json().data.every((account: { code: string }) => account.code === 'savings'));
      assert.equal((await call('GET', '/v1/ledger/accounts?limit=500', owner)).statusCode, 400);
      assert.equal((await call('GET', '/v1/ledger/accounts', stranger)).json().data.length, 0);
    });

    test("another org's account, balance and history answer 404", async () => {
      for (const suffix of ['', '/balance', '/transfers']) {
        const response = await call('GET', `/v1/ledger/accounts/${wallet}${suffix}`, stranger);
        assert.equal(response.statusCode, 404, suffix);
        assert.equal(response.json().code, 'ACCOUNT_NOT_FOUND');
      }
    });
  });

  describe('transfers', () => {
    test('creates a transfer (201), replays it by id (200), and refuses the id with other fields (409)', async () => {
      const id = newId('trf');
      const first = await send('1000', { id, reference: 'order-1' });
      assert.equal(first.statusCode, 201);
      assert.equal(first.json().amount, '1000');
      const retry = await send('1000', { id, reference: 'order-1' });
      assert.equal(retry.statusCode, 200);
      assert.deepEqual(retry.json(), first.json());
      const conflict = await send('1001', { id, reference: 'order-1' });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().code, 'TRANSFER_ID_CONFLICT');
      assert.equal((await call('GET', `/v1/ledger/transfers/${id}`, owner)).json().reference, 'order-1');
      assert.equal((await call('GET', '/v1/ledger/transfers/by-reference/order-1', owner)).json().id, id);
    });

    test('an Idempotency-Key replays the first answer; with another body it is 409', async () => {
      const headers = { 'idempotency-key': 'route-key-1' };
      const first = await send('5', {}, owner, headers);
      const replay = await send('5', {}, owner, headers);
      assert.equal(first.statusCode, 201);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(replay.json().id, first.json().id);
      const other = await send('6', {}, owner, headers);
      assert.equal(other.statusCode, 409);
      assert.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED');
    });

    test('the same Idempotency-Key sent 8 times at once writes one transfer', async () => {
      const before = (await call('GET', `/v1/ledger/accounts/${wallet}`, owner)).json().balance.posted;
      const responses = await Promise.all(
        Array.from({ length: 8 }, () => send('7', {}, owner, { 'idempotency-key': 'route-key-race' })),
      );
      assert.equal(responses.filter((response) => response.statusCode === 201).length >= 1, true);
      for (const response of responses)
        assert.ok([200, 201, 409].includes(response.statusCode), response.body);
      const ids = new Set(responses.filter((r) => r.statusCode < 300).map((r) => r.json().id));
      assert.equal(ids.size, 1, 'every success names the same transfer');
      const after = (await call('GET', `/v1/ledger/accounts/${wallet}`, owner)).json().balance.posted;
      assert.equal(BigInt(after) - BigInt(before), 7n);
    });

    test('INSUFFICIENT_FUNDS is a 422 problem carrying the available balance', async () => {
      const available = (await call('GET', `/v1/ledger/accounts/${wallet}`, owner)).json().balance.available;
      const response = await call('POST', '/v1/ledger/transfers', owner, {
        debitAccountId: wallet,
        creditAccountId: bank,
        asset: 'USD',
        amount: String(BigInt(available) + 1n),
      });
      assert.equal(response.statusCode, 422);
      assert.match(String(response.headers['content-type']), /application\/problem\+json/);
      const body = response.json();
      assert.equal(body.code, 'INSUFFICIENT_FUNDS');
      assert.equal(body.available, available);
      assert.equal(body.accountId, wallet);
      assert.ok(body.transferId);
    });

    test('a two-phase transfer: pending (201, status pending), then post in part', async () => {
      const hold = await send('100', { type: 'pending', timeoutSeconds: 3600 });
      assert.equal(hold.statusCode, 201);
      assert.equal(hold.json().status, 'pending');
      const post = await call('POST', '/v1/ledger/transfers', owner, {
        type: 'post',
        pendingId: hold.json().id,
        amount: '60',
      });
      assert.equal(post.statusCode, 201);
      assert.equal(
        (await call('GET', `/v1/ledger/transfers/${hold.json().id}`, owner)).json().status,
        'posted',
      );
      const again = await call('POST', '/v1/ledger/transfers', owner, {
        type: 'void',
        pendingId: hold.json().id,
      });
      assert.equal(again.statusCode, 409);
      assert.equal(again.json().code, 'ALREADY_POSTED');
    });

    test('rejects malformed transfers, listing every bad field', async () => {
      const response = await call('POST', '/v1/ledger/transfers', owner, {
        type: 'post',
        debitAccountId: bank,
        amount: '12.5',
      });
      assert.equal(response.statusCode, 400);
      const paths = response.json().errors.map((error: { path: string }) => error.path);
      assert.ok(paths.includes('/amount'), JSON.stringify(paths));
      const missing = await call('POST', '/v1/ledger/transfers', owner, {
        type: 'post',
        debitAccountId: bank,
      });
      assert.equal(missing.statusCode, 400);
      assert.deepEqual(
        missing
          .json()
          .errors.map((error: { path: string }) => error.path)
          .sort(),
        ['/debitAccountId', '/pendingId'],
      );
      const same = await send('1', { creditAccountId: bank });
      assert.equal(same.statusCode, 400);
      assert.equal(same.json().errors[0].path, '/creditAccountId');
    });

    test("another org's transfer, reference and accounts answer 404", async () => {
      const mine = (await send('1', { reference: 'secret-ref' })).json();
      assert.equal((await call('GET', `/v1/ledger/transfers/${mine.id}`, stranger)).statusCode, 404);
      assert.equal(
        (await call('GET', '/v1/ledger/transfers/by-reference/secret-ref', stranger)).statusCode,
        404,
      );
      await call('POST', '/v1/ledger/assets', stranger, { code: 'USD', scale: 2 });
      const theirs = (await call('POST', '/v1/ledger/accounts', stranger, { asset: 'USD', name: 'x' })).json()
        .id;
      const crossing = await call('POST', '/v1/ledger/transfers', stranger, {
        debitAccountId: theirs,
        creditAccountId: wallet,
        asset: 'USD',
        amount: '1',
      });
      assert.equal(crossing.statusCode, 404);
      assert.equal(crossing.json().code, 'ACCOUNT_NOT_FOUND');
    });

    test('an account’s history pages newest first and its balance can be read at a past instant', async () => {
      const page = await call('GET', `/v1/ledger/accounts/${wallet}/transfers?limit=2`, owner);
      assert.equal(page.statusCode, 200);
      assert.equal(page.json().data.length, 2);
      const next = await call(
        'GET',
        `/v1/ledger/accounts/${wallet}/transfers?limit=2&cursor=${page.json().nextCursor}`,
        owner,
      );
      assert.equal(next.statusCode, 200);
      assert.notEqual(next.json().data[0].id, page.json().data[1].id);
      const bad = await call('GET', `/v1/ledger/accounts/${wallet}/transfers?cursor=nonsense`, owner);
      assert.equal(bad.statusCode, 400);
      const past = await call('GET', `/v1/ledger/accounts/${wallet}/balance?at=2000-01-01T00:00:00Z`, owner);
      assert.equal(past.statusCode, 200);
      assert.equal(past.json().posted, '0');
      const now = await call('GET', `/v1/ledger/accounts/${wallet}/balance`, owner);
      assert.equal(now.json().at, null);
      assert.equal(
        (await call('GET', `/v1/ledger/accounts/${wallet}/balance?at=yesterday`, owner)).statusCode,
        400,
      );
    });
  });

  describe('bulk and transactions', () => {
    test('bulk answers one result per transfer, in order, each on its own', async () => {
      const response = await call('POST', '/v1/ledger/transfers/bulk', owner, {
        transfers: [
          { debitAccountId: bank, creditAccountId: wallet, asset: 'USD', amount: '3' },
          { debitAccountId: wallet, creditAccountId: bank, asset: 'USD', amount: '999999999' },
          { debitAccountId: bank, creditAccountId: wallet, asset: 'USD', amount: '4' },
        ],
      });
      assert.equal(response.statusCode, 200);
      const { results } = response.json();
      assert.deepEqual(
        results.map((result: { status: string }) => result.status),
        ['created', 'failed', 'created'],
      );
      assert.equal(results[1].error.code, 'INSUFFICIENT_FUNDS');
    });

    test('bulk validation names the bad item, and more than the limit is refused', async () => {
      const response = await call('POST', '/v1/ledger/transfers/bulk', owner, {
        transfers: [
          { debitAccountId: bank, creditAccountId: wallet, asset: 'USD', amount: '3' },
          { debitAccountId: bank, creditAccountId: wallet, asset: 'USD' },
        ],
      });
      assert.equal(response.statusCode, 400);
      assert.equal(response.json().errors[0].path, '/transfers/1/amount');
      const tooMany = await call('POST', '/v1/ledger/transfers/bulk', owner, {
        transfers: Array.from({ length: MAX_BULK_TRANSFERS + 1 }, () => ({ type: 'void' })),
      });
      assert.equal(tooMany.statusCode, 400);
    });

    test('a transaction commits all its transfers or none, and answers the failing index', async () => {
      const failing = await call('POST', '/v1/ledger/transactions', owner, {
        transfers: [
          { debitAccountId: bank, creditAccountId: wallet, asset: 'USD', amount: '1' },
          { debitAccountId: wallet, creditAccountId: bank, asset: 'USD', amount: '999999999' },
        ],
      });
      assert.equal(failing.statusCode, 422);
      assert.equal(failing.json().index, 1);
      const id = newId('txn');
      const done = await call('POST', '/v1/ledger/transactions', owner, {
        id,
        transfers: [
          { debitAccountId: bank, creditAccountId: wallet, asset: 'USD', amount: '1' },
          { debitAccountId: wallet, creditAccountId: bank, asset: 'USD', amount: '1' },
        ],
      });
      assert.equal(done.statusCode, 201);
      assert.equal(done.json().transfers.length, 2);
      assert.equal((await call('GET', `/v1/ledger/transactions/${id}`, owner)).json().transfers.length, 2);
      assert.equal((await call('GET', `/v1/ledger/transactions/${id}`, stranger)).statusCode, 404);
      assert.equal((await call('POST', '/v1/ledger/transactions', owner, { transfers: [] })).statusCode, 400);
    });
  });

  test('committed batches show in /metrics', async () => {
    const metrics = await keel.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /keel_ledger_batch_transfers_count [1-9]/);
    assert.match(metrics.body, /keel_ledger_batch_duration_seconds_bucket/);
  });

  test('reconciliation reports a balanced ledger, per org', async () => {
    const response = await call('GET', '/v1/ledger/reconciliation', owner);
    assert.equal(response.statusCode, 200);
    const report = response.json();
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.assets[0].postedImbalance, '0');
    const theirs = (await call('GET', '/v1/ledger/reconciliation', stranger)).json();
    assert.ok(theirs.assets.every((asset: { accounts: number }) => asset.accounts <= 1));
  });
});
