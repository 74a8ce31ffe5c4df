import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOrgWithApiKey, createUserSession } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { assembleModules } from '../../app.ts';
import type { App } from '../../infra/http/pipeline.ts';
import type { MeteringService } from './service.ts';

type Headers = Record<string, string>;

function meteringOf(app: App): MeteringService {
  const module = assembleModules(app.runtime).find((candidate) => candidate.name === 'metering');
  if (!module) throw new Error('the metering module is not assembled');
  return (module as unknown as { service: MeteringService }).service;
}

interface Point {
  periodStart: string;
  meter: string;
  value: string;
  count: string;
  keyId?: string | null;
  userId?: string | null;
  route?: string | null;
}

describe('usage routes', () => {
  let database: TestDatabase;
  let t: TestApp;
  before(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database);
  });
  after(async () => {
    await t.close();
    await database.drop();
  });

  const usage = async (app: App, headers: Headers, query: string) => {
    const response = await app.inject({ method: 'GET', url: `/v1/usage?${query}`, headers });
    assert.equal(response.statusCode, 200, response.body);
    return response.json<{ data: Point[] }>().data;
  };
  const requestsByRoute = async (app: App, headers: Headers) =>
    Object.fromEntries(
      (await usage(app, headers, 'granularity=hour&meter=api_requests&groupBy=route')).map((point) => [
        point.route,
        Number(point.value),
      ]),
    );
  const send = (
    app: App,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    headers: Headers,
    payload?: unknown,
  ) => app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });

  describe('request counting', () => {
    test('every authenticated request is counted exactly, per key, user and route, after concurrent requests and a flush', async () => {
      const org = await createOrgWithApiKey(t.app);
      const session = await createUserSession(t.app);
      // 1. 120 concurrent requests with the key, 20 with a session of another org, 15 unauthenticated.
      const responses = await Promise.all([
        ...Array.from({ length: 80 }, () => send(t.app, 'GET', '/v1/org', org.headers)),
        ...Array.from({ length: 40 }, () => send(t.app, 'GET', '/v1/usage/meters', org.headers)),
        ...Array.from({ length: 20 }, () => send(t.app, 'GET', '/v1/org', session.headers)),
        ...Array.from({ length: 15 }, () => send(t.app, 'GET', '/v1/usage', {})),
      ]);
      assert.equal(responses.filter((response) => response.statusCode === 200).length, 140);
      // 2. Flush what this process counted.
      await meteringOf(t.app).flush();
      // 3. Exact counts, by key and route.
      const points = await usage(
        t.app,
        org.headers,
        'granularity=hour&meter=api_requests&groupBy=key&groupBy=route',
      );
      assert.deepEqual(
        points.map((point) => [point.keyId, point.userId, point.route, point.value]),
        [
          [org.keyId, null, 'GET /v1/org', '80'],
          [org.keyId, null, 'GET /v1/usage/meters', '40'],
        ],
      );
      const sessionPoints = await usage(t.app, session.headers, 'granularity=day&groupBy=key');
      assert.deepEqual(
        sessionPoints.map((point) => [point.meter, point.keyId, point.userId, point.value]),
        [['api_requests', null, session.userId, '20']],
        'a signed-in user’s requests count for their org, attributed to the user',
      );
    });

    test('a graceful close writes every count: nothing is lost', async () => {
      const replica = await buildTestApp(database);
      const org = await createOrgWithApiKey(replica.app);
      await Promise.all(Array.from({ length: 57 }, () => send(replica.app, 'GET', '/v1/org', org.headers)));
      await replica.close();
      assert.deepEqual(await requestsByRoute(t.app, org.headers), { 'GET /v1/org': 57 });
    });

    test('two app instances sharing one database add up', async () => {
      const [first, second] = await Promise.all([buildTestApp(database), buildTestApp(database)]);
      const org = await createOrgWithApiKey(first.app);
      await Promise.all([
        ...Array.from({ length: 40 }, () => send(first.app, 'GET', '/v1/org', org.headers)),
        ...Array.from({ length: 35 }, () => send(second.app, 'GET', '/v1/org', org.headers)),
      ]);
      await Promise.all([first.close(), second.close()]);
      assert.deepEqual(await requestsByRoute(t.app, org.headers), { 'GET /v1/org': 75 });
    });

    test('requests refused for want of a credential are not counted; refused for want of a scope, they are', async () => {
      const org = await createOrgWithApiKey(t.app, { permissions: ['org:read'] });
      const reader = await createOrgWithApiKey(t.app);
      assert.equal((await send(t.app, 'GET', '/v1/usage', {})).statusCode, 401);
      const forbidden = await send(t.app, 'GET', '/v1/usage', org.headers);
      assert.equal(forbidden.statusCode, 403);
      assert.equal(forbidden.json().code, 'FORBIDDEN');
      await meteringOf(t.app).flush();
      const all = await usage(t.app, reader.headers, 'granularity=day&groupBy=key');
      assert.deepEqual(all, [], 'the other org sees none of it');
      // The 403 was an authenticated request of `org`: it counts for that org.
      await meteringOf(t.app).flush();
      const mine = await meteringOf(t.app).usage(org.orgId, { granularity: 'day', groupBy: ['route'] });
      assert.ok(mine.ok);
      assert.deepEqual(
        mine.value.data.map((point) => [point.route, point.value]),
        [['GET /v1/usage', '1']],
      );
    });
  });

  describe('POST /v1/usage/events', () => {
    const defineMeter = async (headers: Headers, name: string, aggregation = 'sum') => {
      const response = await send(t.app, 'POST', '/v1/usage/meters', headers, { name, aggregation });
      assert.ok([200, 201].includes(response.statusCode), response.body);
    };

    test('records one event or a batch, idempotently by id', async () => {
      const org = await createOrgWithApiKey(t.app);
      await defineMeter(org.headers, 'image.renders');
      const single = await send(t.app, 'POST', '/v1/usage/events', org.headers, {
        specversion: '1.0',
        id: 'render-1',
        type: 'image.renders',
        source: '/workers/renderer-3',
        subject: 'customer-42',
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        data: { value: 3, model: 'sdxl' },
      });
      assert.equal(single.statusCode, 200, single.body);
      assert.deepEqual(single.json(), {
        accepted: 1,
        duplicates: 0,
        results: [{ id: 'render-1', status: 'accepted' }],
      });

      const batch = await send(t.app, 'POST', '/v1/usage/events', org.headers, [
        { id: 'render-1', type: 'image.renders', data: { value: 3 } },
        { id: 'render-2', type: 'image.renders', data: { value: '0.5' } },
      ]);
      assert.equal(batch.statusCode, 200, batch.body);
      assert.deepEqual(
        batch.json().results.map((result: { status: string }) => result.status),
        ['duplicate', 'accepted'],
      );
      const [point] = await usage(t.app, org.headers, 'granularity=hour&meter=image.renders&groupBy=key');
      assert.deepEqual([point?.value, point?.count, point?.keyId], ['3.5', '2', org.keyId]);
    });

    test('validation: every bad field of every event is listed, and nothing is recorded', async () => {
      const org = await createOrgWithApiKey(t.app);
      await defineMeter(org.headers, 'image.renders');
      const malformed = await send(t.app, 'POST', '/v1/usage/events', org.headers, {
        type: 'Not A Meter',
        data: { value: -1 },
        colour: 'blue',
      });
      assert.equal(malformed.statusCode, 400);
      const paths = malformed.json().errors.map((error: { path: string }) => error.path);
      for (const path of ['/id', '/type', '/colour', '/data/value'])
        assert.ok(paths.includes(path), `${path} in ${paths}`);

      const semantic = await send(t.app, 'POST', '/v1/usage/events', org.headers, [
        { id: 'ok-1', type: 'image.renders', data: { value: 1 } },
        { id: 'bad-1', type: 'no.such_meter', data: { value: 1 } },
        { id: 'bad-2', type: 'image.renders' },
        { id: 'bad-3', type: 'api_requests' },
      ]);
      assert.equal(semantic.statusCode, 400, semantic.body);
      assert.equal(semantic.json().code, 'VALIDATION_FAILED');
      assert.deepEqual(
        semantic.json().errors.map((error: { path: string; in: string }) => [error.in, error.path]),
        [
          ['body', '/1/type'],
          ['body', '/2/data/value'],
          ['body', '/3/type'],
        ],
      );
      assert.deepEqual(await usage(t.app, org.headers, 'meter=image.renders'), []);
    });

    test('authentication: no credential is 401, a key without usage:write is 403', async () => {
      assert.equal(
        (await send(t.app, 'POST', '/v1/usage/events', {}, { id: 'x', type: 'a.b' })).statusCode,
        401,
      );
      const reader = await createOrgWithApiKey(t.app, { permissions: ['usage:read'] });
      const refused = await send(t.app, 'POST', '/v1/usage/events', reader.headers, { id: 'x', type: 'a.b' });
      assert.equal(refused.statusCode, 403);
    });

    test('cross-org: another org’s meters are not yours, and event ids are per org', async () => {
      const [orgA, orgB] = [await createOrgWithApiKey(t.app), await createOrgWithApiKey(t.app)];
      await defineMeter(orgA.headers, 'image.renders');
      const refused = await send(t.app, 'POST', '/v1/usage/events', orgB.headers, {
        id: 'same',
        type: 'image.renders',
        data: { value: 1 },
      });
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.json().errors[0].path, '/type');
      await defineMeter(orgB.headers, 'image.renders');
      for (const org of [orgA, orgB]) {
        const accepted = await send(t.app, 'POST', '/v1/usage/events', org.headers, {
          id: 'same',
          type: 'image.renders',
          data: { value: 1 },
        });
        assert.equal(accepted.json().accepted, 1, 'the same id is new in each org');
      }
    });
  });

  describe('meters', () => {
    test('POST creates (201), again answers it (200), another aggregation is 409; GET lists built-in and own meters', async () => {
      const org = await createOrgWithApiKey(t.app);
      const body = { name: 'jobs.started', aggregation: 'count', description: 'Jobs started', unit: 'jobs' };
      const created = await send(t.app, 'POST', '/v1/usage/meters', org.headers, body);
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().builtIn, false);
      assert.equal((await send(t.app, 'POST', '/v1/usage/meters', org.headers, body)).statusCode, 200);
      const conflict = await send(t.app, 'POST', '/v1/usage/meters', org.headers, {
        ...body,
        aggregation: 'sum',
      });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().code, 'METER_EXISTS');
      const list = await send(t.app, 'GET', '/v1/usage/meters', org.headers);
      const names = list.json().data.map((meter: { name: string }) => meter.name);
      assert.ok(names.includes('api_requests') && names.includes('jobs.started'));
    });

    test('validation and authentication', async () => {
      const org = await createOrgWithApiKey(t.app);
      const invalid = await send(t.app, 'POST', '/v1/usage/meters', org.headers, {
        name: 'Bad Name',
        aggregation: 'avg',
      });
      assert.equal(invalid.statusCode, 400);
      const paths = invalid.json().errors.map((error: { path: string }) => error.path);
      assert.ok(paths.includes('/name') && paths.includes('/aggregation'), paths.join(', '));
      assert.equal((await send(t.app, 'GET', '/v1/usage/meters', {})).statusCode, 401);
    });

    test('cross-org: one org’s meters are not listed for another', async () => {
      const [orgA, orgB] = [await createOrgWithApiKey(t.app), await createOrgWithApiKey(t.app)];
      await send(t.app, 'POST', '/v1/usage/meters', orgA.headers, {
        name: 'secret.meter',
        aggregation: 'sum',
      });
      const names = (await send(t.app, 'GET', '/v1/usage/meters', orgB.headers))
        .json()
        .data.map((meter: { name: string }) => meter.name);
      assert.ok(!names.includes('secret.meter'));
    });
  });

  describe('GET /v1/usage', () => {
    test('validation: bad parameters are listed; a backwards or too wide range is 400; an unknown meter 404', async () => {
      const org = await createOrgWithApiKey(t.app);
      const invalid = await send(
        t.app,
        'GET',
        '/v1/usage?granularity=minute&groupBy=colour&from=yesterday',
        org.headers,
      );
      assert.equal(invalid.statusCode, 400);
      const paths = invalid
        .json()
        .errors.map((error: { path: string; in: string }) => `${error.in}${error.path}`);
      for (const path of ['query/granularity', 'query/groupBy/0', 'query/from'])
        assert.ok(paths.includes(path), `${path} in ${paths}`);
      const backwards = await send(
        t.app,
        'GET',
        '/v1/usage?from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z',
        org.headers,
      );
      assert.equal(backwards.statusCode, 400);
      assert.deepEqual(backwards.json().errors, [
        { path: '/from', in: 'query', message: 'must be before to' },
      ]);
      const wide = await send(
        t.app,
        'GET',
        '/v1/usage?granularity=hour&from=2026-01-01T00:00:00Z&to=2026-11-01T00:00:00Z',
        org.headers,
      );
      assert.equal(wide.statusCode, 400);
      const unknown = await send(t.app, 'GET', '/v1/usage?meter=no.such_meter', org.headers);
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().code, 'METER_NOT_FOUND');
    });

    test('cross-org: asking for another org’s meter is 404, and its usage never shows', async () => {
      const [orgA, orgB] = [await createOrgWithApiKey(t.app), await createOrgWithApiKey(t.app)];
      await send(t.app, 'POST', '/v1/usage/meters', orgA.headers, { name: 'a.only', aggregation: 'sum' });
      await send(t.app, 'POST', '/v1/usage/events', orgA.headers, {
        id: '1',
        type: 'a.only',
        data: { value: 5 },
      });
      assert.equal((await send(t.app, 'GET', '/v1/usage?meter=a.only', orgB.headers)).statusCode, 404);
      assert.deepEqual(await usage(t.app, orgB.headers, 'granularity=day&groupBy=key&groupBy=route'), []);
    });
  });

  describe('quotas', () => {
    test('PUT sets a quota, GET lists it with this month’s usage, DELETE removes it', async () => {
      const org = await createOrgWithApiKey(t.app);
      const set = await send(t.app, 'PUT', '/v1/usage/quotas/api_requests', org.headers, { quota: '1000' });
      assert.equal(set.statusCode, 200, set.body);
      assert.equal(set.json().quota, '1000');
      const list = await send(t.app, 'GET', '/v1/usage/quotas', org.headers);
      assert.deepEqual(
        list.json().data.map((quota: { meter: string; quota: string }) => [quota.meter, quota.quota]),
        [['api_requests', '1000']],
      );
      assert.equal(
        (await send(t.app, 'DELETE', '/v1/usage/quotas/api_requests', org.headers)).statusCode,
        204,
      );
      assert.equal(
        (await send(t.app, 'DELETE', '/v1/usage/quotas/api_requests', org.headers)).statusCode,
        404,
      );
    });

    test('crossing 80 % and 100 % puts usage.threshold_reached in the org’s event stream once each, for webhooks', async () => {
      const org = await createOrgWithApiKey(t.app);
      await send(t.app, 'POST', '/v1/usage/meters', org.headers, { name: 'renders', aggregation: 'sum' });
      await send(t.app, 'PUT', '/v1/usage/quotas/renders', org.headers, { quota: '10' });
      for (const [id, value] of [
        ['a', 5],
        ['b', 3],
        ['c', 1],
        ['d', 1],
        ['e', 4],
      ] as const) {
        await send(t.app, 'POST', '/v1/usage/events', org.headers, { id, type: 'renders', data: { value } });
      }
      // The stream shows an event once every older transaction of the cluster has ended, so a
      // busy test database may take a moment.
      const thresholds = async (headers: Headers) => {
        const events = await send(t.app, 'GET', '/v1/events?type=usage.threshold_reached', headers);
        assert.equal(events.statusCode, 200, events.body);
        return events
          .json()
          .data.map((event: { data: { threshold: number; used: string } }) => [
            event.data.threshold,
            event.data.used,
          ]);
      };
      const deadline = Date.now() + 10_000;
      while ((await thresholds(org.headers)).length < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(await thresholds(org.headers), [
        [80, '8'],
        [100, '10'],
      ]);
      const other = await createOrgWithApiKey(t.app);
      assert.deepEqual(await thresholds(other.headers), [], 'another org is not told');
    });

    test('validation, unknown meter, authentication', async () => {
      const org = await createOrgWithApiKey(t.app);
      for (const quota of ['0', '-5', 'lots', '0.0']) {
        const response = await send(t.app, 'PUT', '/v1/usage/quotas/api_requests', org.headers, { quota });
        assert.equal(response.statusCode, 400, `${quota}: ${response.body}`);
      }
      const unknown = await send(t.app, 'PUT', '/v1/usage/quotas/no.such_meter', org.headers, { quota: '5' });
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().code, 'METER_NOT_FOUND');
      assert.equal((await send(t.app, 'GET', '/v1/usage/quotas', {})).statusCode, 401);
      const reader = await createOrgWithApiKey(t.app, { permissions: ['usage:read'] });
      assert.equal(
        (await send(t.app, 'PUT', '/v1/usage/quotas/api_requests', reader.headers, { quota: '5' }))
          .statusCode,
        403,
      );
    });

    test('cross-org: another org’s quota is neither listed nor deletable', async () => {
      const [orgA, orgB] = [await createOrgWithApiKey(t.app), await createOrgWithApiKey(t.app)];
      await send(t.app, 'PUT', '/v1/usage/quotas/api_requests', orgA.headers, { quota: '5' });
      assert.deepEqual((await send(t.app, 'GET', '/v1/usage/quotas', orgB.headers)).json().data, []);
      assert.equal(
        (await send(t.app, 'DELETE', '/v1/usage/quotas/api_requests', orgB.headers)).statusCode,
        404,
      );
      assert.equal((await send(t.app, 'GET', '/v1/usage/quotas', orgA.headers)).json().data.length, 1);
    });
  });
});
