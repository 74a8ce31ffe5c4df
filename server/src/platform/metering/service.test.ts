import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../test/harness.ts';
import { manualClock } from '../../infra/clock.ts';
import { newId } from '../../infra/ids.ts';
import { defineMeter } from './catalogue.ts';
import { DAY_MS, HOUR_MS } from './domain/periods.ts';
import {
  EVENT_RETENTION_MS,
  MAX_EVENT_AGE_MS,
  MAX_METERS_PER_ORG,
  MAX_RANGE_MS,
  type MeterEventInput,
  type UsagePoint,
} from './service.ts';
import { failed, ok, type TestMetering, testMetering, thresholdEvents } from './test-support.ts';

const COMPUTE_UNITS = defineMeter({
  name: 'test.compute_units',
  aggregation: 'sum',
  description: 'A built-in meter for these tests.',
});

const total = (points: readonly UsagePoint[]) => points.reduce((sum, point) => sum + Number(point.value), 0);

describe('metering service', () => {
  let database: TestDatabase;
  let keel: TestMetering;
  const clock = manualClock('2026-11-23T10:20:00Z');

  before(async () => {
    database = await createTestDatabase();
    keel = testMetering(database.url, { clock });
  });
  after(async () => {
    await keel.close();
    await database.drop();
  });

  const requests = async (orgId: string, meter = 'api_requests') =>
    ok(await keel.metering.usage(orgId, { granularity: 'hour', meters: [meter] })).data;

  describe('request counting', () => {
    test('counts are exact per key and route after concurrent counting and one flush', async () => {
      const orgId = newId('org');
      const keys = [newId('key'), newId('key'), newId('usr')];
      const routes = ['GET /v1/org', 'POST /v1/ledger/transfers'];
      // 600 "requests" finishing concurrently, spread over three principals and two routes.
      await Promise.all(
        Array.from({ length: 600 }, async (_, index) => {
          await new Promise((resolve) => setImmediate(resolve));
          keel.metering.countRequest(orgId, keys[index % 3]!, routes[index % 2]!);
        }),
      );
      await keel.metering.flush();

      const byKeyAndRoute = ok(
        await keel.metering.usage(orgId, { granularity: 'hour', groupBy: ['key', 'route'] }),
      ).data;
      assert.equal(byKeyAndRoute.length, 6);
      for (const point of byKeyAndRoute) {
        assert.equal(point.value, '100');
        assert.equal(point.meter, 'api_requests');
        assert.equal(point.periodStart.toISOString(), '2026-11-23T10:00:00.000Z');
      }
      const user = byKeyAndRoute.find((point) => point.userId === keys[2]);
      assert.equal(user?.keyId, null, 'a signed-in user’s requests are attributed to the user, not a key');
      const daily = ok(await keel.metering.usage(orgId, { granularity: 'day' })).data;
      assert.deepEqual(
        daily.map((point) => [point.periodStart.toISOString(), point.meter, point.value, point.count]),
        [['2026-11-23T00:00:00.000Z', 'api_requests', '600', '600']],
      );
    });

    test('flushing twice adds, never overwrites', async () => {
      const orgId = newId('org');
      const key = newId('key');
      for (let index = 0; index < 5; index += 1) keel.metering.countRequest(orgId, key, 'GET /v1/org');
      await keel.metering.flush();
      for (let index = 0; index < 7; index += 1) keel.metering.countRequest(orgId, key, 'GET /v1/org');
      await keel.metering.flush();
      assert.equal(total(await requests(orgId)), 12);
    });

    test('two replicas sharing one database add up, flushing at the same moment', async () => {
      const other = testMetering(database.url, { clock });
      try {
        const orgs = [newId('org'), newId('org'), newId('org')];
        for (const [replica, count] of [
          [keel, 250],
          [other, 170],
        ] as const) {
          for (let index = 0; index < count; index += 1) {
            for (const orgId of orgs) replica.metering.countRequest(orgId, `key_${index % 4}`, 'GET /v1/org');
          }
        }
        await Promise.all([keel.metering.flush(), other.metering.flush()]);
        for (const orgId of orgs) assert.equal(total(await requests(orgId)), 420);
      } finally {
        await other.close();
      }
    });

    test('close writes every count still in memory: a graceful shutdown loses nothing', async () => {
      const replica = testMetering(database.url, { clock });
      const orgId = newId('org');
      for (let index = 0; index < 333; index += 1)
        replica.metering.countRequest(orgId, newId('key'), 'GET /v1/org');
      await replica.close();
      assert.equal(total(await requests(orgId)), 333);
    });

    test('accumulate adds integer usage of a built-in meter in memory', async () => {
      const orgId = newId('org');
      const keyId = newId('key');
      for (const value of [10, 25, 5]) keel.metering.accumulate(orgId, COMPUTE_UNITS.name, value, { keyId });
      await keel.metering.flush();
      const points = ok(
        await keel.metering.usage(orgId, {
          granularity: 'hour',
          meters: [COMPUTE_UNITS.name],
          groupBy: ['key'],
        }),
      ).data;
      assert.deepEqual(
        points.map((point) => [point.keyId, point.value, point.count]),
        [[keyId, '40', '3']],
      );
      assert.throws(() => keel.metering.accumulate(orgId, 'not.built_in', 1), /built-in meter/);
      assert.throws(() => keel.metering.accumulate(orgId, COMPUTE_UNITS.name, 1.5), /safe integer/);
    });

    test('one org never sees another org’s usage', async () => {
      const [orgA, orgB] = [newId('org'), newId('org')];
      keel.metering.countRequest(orgA, newId('key'), 'GET /v1/org');
      await keel.metering.flush();
      assert.equal(total(await requests(orgA)), 1);
      assert.deepEqual(await requests(orgB), []);
    });
  });

  describe('meter events', () => {
    const event = (overrides: Partial<MeterEventInput> = {}): MeterEventInput => ({
      id: newId('evt'),
      type: 'image.renders',
      data: { value: 2 },
      ...overrides,
    });
    const orgWithMeters = async () => {
      const orgId = newId('org');
      ok(await keel.metering.createMeter(orgId, { name: 'image.renders', aggregation: 'sum' }));
      ok(await keel.metering.createMeter(orgId, { name: 'jobs.started', aggregation: 'count' }));
      ok(await keel.metering.createMeter(orgId, { name: 'storage.peak_gb', aggregation: 'max' }));
      return orgId;
    };

    test('an event id is counted once: sending it again reports a duplicate', async () => {
      const orgId = await orgWithMeters();
      const first = [event(), event()];
      const recorded = ok(await keel.metering.recordMeterEvents(orgId, first));
      assert.deepEqual([recorded.accepted, recorded.duplicates], [2, 0]);
      const again = ok(
        await keel.metering.recordMeterEvents(orgId, [...first, event({ data: { value: '0.5' } })]),
      );
      assert.deepEqual(
        again.results.map((result) => result.status),
        ['duplicate', 'duplicate', 'accepted'],
      );
      assert.equal((await requests(orgId, 'image.renders'))[0]?.value, '4.5');
    });

    test('the same batch sent five times at once is counted once', async () => {
      const orgId = await orgWithMeters();
      const batch = Array.from({ length: 50 }, () => event({ data: { value: 1 } }));
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, () => keel.metering.recordMeterEvents(orgId, batch)),
      );
      assert.equal(
        outcomes.reduce((sum, outcome) => sum + ok(outcome).accepted, 0),
        50,
      );
      assert.equal((await requests(orgId, 'image.renders'))[0]?.value, '50');
    });

    test('an id repeated inside one batch is counted once', async () => {
      const orgId = await orgWithMeters();
      const one = event();
      const recorded = ok(await keel.metering.recordMeterEvents(orgId, [one, one]));
      assert.deepEqual(
        recorded.results.map((result) => result.status),
        ['accepted', 'duplicate'],
      );
    });

    test('event ids are per org: another org may use the same id', async () => {
      const [orgA, orgB] = [await orgWithMeters(), await orgWithMeters()];
      const shared = event();
      assert.equal(ok(await keel.metering.recordMeterEvents(orgA, [shared])).accepted, 1);
      assert.equal(ok(await keel.metering.recordMeterEvents(orgB, [shared])).accepted, 1);
    });

    test('sum, count and max aggregate per hour and per day, decimals exactly', async () => {
      const orgId = await orgWithMeters();
      const at = (iso: string) => new Date(iso).toISOString();
      ok(
        await keel.metering.recordMeterEvents(orgId, [
          event({ time: at('2026-11-23T08:10:00Z'), data: { value: '0.1' } }),
          event({ time: at('2026-11-23T08:50:00Z'), data: { value: '0.2' } }),
          event({ time: at('2026-11-23T09:05:00Z'), data: { value: 3 } }),
          event({ type: 'jobs.started', time: at('2026-11-23T08:15:00Z'), data: {} }),
          event({ type: 'jobs.started', time: at('2026-11-23T09:15:00Z') }),
          event({ type: 'storage.peak_gb', time: at('2026-11-23T08:20:00Z'), data: { value: '7.25' } }),
          event({ type: 'storage.peak_gb', time: at('2026-11-23T09:20:00Z'), data: { value: '3' } }),
        ]),
      );
      const hourly = ok(await keel.metering.usage(orgId, { granularity: 'hour' })).data;
      assert.deepEqual(
        hourly.map((point) => [
          point.periodStart.toISOString().slice(11, 13),
          point.meter,
          point.value,
          point.count,
        ]),
        [
          ['08', 'image.renders', '0.3', '2'],
          ['08', 'jobs.started', '1', '1'],
          ['08', 'storage.peak_gb', '7.25', '1'],
          ['09', 'image.renders', '3', '1'],
          ['09', 'jobs.started', '1', '1'],
          ['09', 'storage.peak_gb', '3', '1'],
        ],
      );
      const daily = ok(await keel.metering.usage(orgId, { granularity: 'day' })).data;
      assert.deepEqual(
        daily.map((point) => [point.meter, point.value]),
        [
          ['image.renders', '3.3'],
          ['jobs.started', '2'],
          ['storage.peak_gb', '7.25'],
        ],
      );
    });

    test('a batch with bad events is refused whole, with every bad field listed', async () => {
      const orgId = await orgWithMeters();
      const now = clock.now().getTime();
      const result = failed(
        await keel.metering.recordMeterEvents(orgId, [
          event(),
          event({ type: 'no.such_meter' }),
          event({ data: {} }),
          event({ time: new Date(now - MAX_EVENT_AGE_MS - 1_000).toISOString() }),
          event({ time: new Date(now + HOUR_MS).toISOString() }),
          event({ data: { value: '-3' } }),
          event({ data: { value: 1e-9 } }),
        ]),
      );
      assert.equal(result.code, 'VALIDATION_FAILED');
      assert.ok(result.code === 'VALIDATION_FAILED');
      assert.deepEqual(
        result.errors.map((error) => [error.index, error.path]),
        [
          [1, '/type'],
          [2, '/data/value'],
          [3, '/time'],
          [4, '/time'],
          [5, '/data/value'],
          [6, '/data/value'],
        ],
      );
      assert.deepEqual(await requests(orgId, 'image.renders'), [], 'not even the good event was recorded');
    });

    test('built-in meters are refused from the API but open to in-process callers', async () => {
      const orgId = await orgWithMeters();
      const refused = failed(
        await keel.metering.recordMeterEvents(orgId, [event({ type: 'api_requests' })], {
          builtInMeters: false,
        }),
      );
      assert.ok(refused.code === 'VALIDATION_FAILED');
      assert.match(refused.errors[0]!.message, /measured by Keel itself/);
      const gateway = ok(
        await keel.metering.recordMeterEvents(
          orgId,
          [event({ type: COMPUTE_UNITS.name, data: { value: 21 } })],
          {
            keyId: 'key_gateway',
          },
        ),
      );
      assert.equal(gateway.accepted, 1);
      assert.equal((await requests(orgId, COMPUTE_UNITS.name))[0]?.value, '21');
    });
  });

  describe('usage queries', () => {
    test('ranges are rounded to whole periods and bounded', async () => {
      const orgId = newId('org');
      const report = ok(
        await keel.metering.usage(orgId, {
          granularity: 'hour',
          from: new Date('2026-11-22T10:30:00Z'),
          to: new Date('2026-11-23T10:01:00Z'),
        }),
      );
      assert.equal(report.from.toISOString(), '2026-11-22T10:00:00.000Z');
      assert.equal(report.to.toISOString(), '2026-11-23T11:00:00.000Z');
      const defaults = ok(await keel.metering.usage(orgId, { granularity: 'day' }));
      assert.equal(defaults.to.getTime() - defaults.from.getTime(), 30 * DAY_MS);

      const backwards = failed(
        await keel.metering.usage(orgId, { granularity: 'hour', from: clock.now(), to: new Date(0) }),
      );
      assert.equal(backwards.code, 'VALIDATION_FAILED');
      const tooWide = failed(
        await keel.metering.usage(orgId, {
          granularity: 'hour',
          from: new Date(clock.now().getTime() - MAX_RANGE_MS.hour - DAY_MS),
        }),
      );
      assert.equal(tooWide.code, 'VALIDATION_FAILED');
      assert.equal(
        failed(await keel.metering.usage(orgId, { granularity: 'day', meters: ['no.such_meter'] })).code,
        'METER_NOT_FOUND',
      );
    });
  });

  describe('quotas', () => {
    test('usage.threshold_reached goes out exactly once at 80 % and once at 100 %', async () => {
      const orgId = newId('org');
      const key = newId('key');
      ok(await keel.metering.setQuota(orgId, 'api_requests', '10'));
      const count = async (requestCount: number) => {
        for (let index = 0; index < requestCount; index += 1)
          keel.metering.countRequest(orgId, key, 'GET /v1/org');
        await keel.metering.flush();
        return (await thresholdEvents(keel.database, orgId)).map((payload) => payload.threshold);
      };
      assert.deepEqual(await count(7), [], '70 %');
      assert.deepEqual(await count(1), [80], '80 %');
      assert.deepEqual(await count(1), [80], '90 %');
      assert.deepEqual(await count(1), [80, 100], '100 %');
      assert.deepEqual(await count(5), [80, 100], '150 %: nothing more');
      const [eighty] = await thresholdEvents(keel.database, orgId);
      assert.deepEqual(eighty, {
        meter: 'api_requests',
        quota: '10',
        used: '8',
        threshold: 80,
        periodStart: '2026-11-01T00:00:00.000Z',
      });
      const [quota] = await keel.metering.listQuotas(orgId);
      assert.deepEqual(
        [quota?.quota, quota?.used, quota?.periodEnd.toISOString()],
        ['10', '15', '2026-12-01T00:00:00.000Z'],
      );
    });

    test('replicas flushing across a threshold at the same moment emit it once', async () => {
      const replicas = [keel, testMetering(database.url, { clock }), testMetering(database.url, { clock })];
      try {
        const orgs = Array.from({ length: 5 }, () => newId('org'));
        for (const orgId of orgs) ok(await keel.metering.setQuota(orgId, 'api_requests', '90'));
        for (const replica of replicas) {
          for (const orgId of orgs) {
            for (let index = 0; index < 30; index += 1)
              replica.metering.countRequest(orgId, 'key_x', 'GET /v1/org');
          }
        }
        await Promise.all(replicas.map((replica) => replica.metering.flush()));
        for (const orgId of orgs) {
          assert.deepEqual(
            (await thresholdEvents(keel.database, orgId)).map((payload) => payload.threshold),
            [80, 100],
          );
          assert.equal(total(await requests(orgId)), 90);
        }
      } finally {
        await Promise.all(replicas.slice(1).map((replica) => replica.close()));
      }
    });

    test('meter-event quotas follow the meter’s aggregation, in the same transaction as the events', async () => {
      const orgId = newId('org');
      ok(await keel.metering.createMeter(orgId, { name: 'image.renders', aggregation: 'sum' }));
      ok(await keel.metering.setQuota(orgId, 'image.renders', '100.5'));
      const send = (value: string) =>
        keel.metering.recordMeterEvents(orgId, [
          { id: newId('evt'), type: 'image.renders', data: { value } },
        ]);
      ok(await send('50'));
      ok(await send('30.3'));
      assert.deepEqual(await thresholdEvents(keel.database, orgId), [], '80.3 of 100.5 is under 80 %');
      ok(await send('0.1')); // exactly 80 %: decimals add up exactly
      assert.deepEqual(
        (await thresholdEvents(keel.database, orgId)).map((payload) => [payload.threshold, payload.used]),
        [[80, '80.4']],
      );
    });

    test('setting a quota below current usage reports the thresholds already reached at once', async () => {
      const orgId = newId('org');
      for (let index = 0; index < 9; index += 1) keel.metering.countRequest(orgId, 'key_x', 'GET /v1/org');
      await keel.metering.flush();
      const quota = ok(await keel.metering.setQuota(orgId, 'api_requests', '10'));
      assert.equal(quota.used, '9');
      assert.deepEqual(
        (await thresholdEvents(keel.database, orgId)).map((payload) => payload.threshold),
        [80],
      );
    });

    test('a changed quota is a new quota: its thresholds are reported again', async () => {
      const orgId = newId('org');
      ok(await keel.metering.setQuota(orgId, 'api_requests', '10'));
      for (let index = 0; index < 10; index += 1) keel.metering.countRequest(orgId, 'key_x', 'GET /v1/org');
      await keel.metering.flush();
      ok(await keel.metering.setQuota(orgId, 'api_requests', '20'));
      for (let index = 0; index < 6; index += 1) keel.metering.countRequest(orgId, 'key_x', 'GET /v1/org');
      await keel.metering.flush();
      assert.deepEqual(
        (await thresholdEvents(keel.database, orgId)).map((payload) => [payload.quota, payload.threshold]),
        [
          ['10', 80],
          ['10', 100],
          ['20', 80],
        ],
      );
    });

    test('each month starts over', async () => {
      const monthClock = manualClock('2026-11-30T23:59:00Z');
      const replica = testMetering(database.url, { clock: monthClock });
      try {
        const orgId = newId('org');
        ok(await replica.metering.setQuota(orgId, 'api_requests', '5'));
        for (let index = 0; index < 5; index += 1)
          replica.metering.countRequest(orgId, 'key_x', 'GET /v1/org');
        await replica.metering.flush();
        monthClock.set('2026-12-01T00:01:00Z');
        for (let index = 0; index < 4; index += 1)
          replica.metering.countRequest(orgId, 'key_x', 'GET /v1/org');
        await replica.metering.flush();
        assert.deepEqual(
          (await thresholdEvents(replica.database, orgId)).map((payload) => [
            payload.periodStart.slice(0, 7),
            payload.threshold,
          ]),
          [
            ['2026-11', 80],
            ['2026-11', 100],
            ['2026-12', 80],
          ],
        );
        const [quota] = await replica.metering.listQuotas(orgId);
        assert.equal(quota?.used, '4', 'the quota shows the current month');
      } finally {
        await replica.close();
      }
    });

    test('quotas need a meter of the org; deleting a missing quota is NOT_FOUND', async () => {
      const orgId = newId('org');
      assert.equal(failed(await keel.metering.setQuota(orgId, 'no.such_meter', '5')).code, 'METER_NOT_FOUND');
      assert.equal(failed(await keel.metering.deleteQuota(orgId, 'api_requests')).code, 'NOT_FOUND');
      ok(await keel.metering.setQuota(orgId, 'api_requests', '5'));
      ok(await keel.metering.deleteQuota(orgId, 'api_requests'));
      assert.deepEqual(await keel.metering.listQuotas(orgId), []);
    });
  });

  describe('meters', () => {
    test('defining a meter again answers it; another aggregation or a built-in name is METER_EXISTS', async () => {
      const orgId = newId('org');
      assert.equal(
        ok(await keel.metering.createMeter(orgId, { name: 'a.b', aggregation: 'sum' })).created,
        true,
      );
      assert.equal(
        ok(await keel.metering.createMeter(orgId, { name: 'a.b', aggregation: 'sum' })).created,
        false,
      );
      assert.equal(
        failed(await keel.metering.createMeter(orgId, { name: 'a.b', aggregation: 'max' })).code,
        'METER_EXISTS',
      );
      assert.equal(
        failed(await keel.metering.createMeter(orgId, { name: 'api_requests', aggregation: 'count' })).code,
        'METER_EXISTS',
      );
      const names = (await keel.metering.listMeters(orgId)).map((meter) => [meter.name, meter.builtIn]);
      assert.deepEqual(
        names.filter(([name]) => name === 'a.b' || name === 'api_requests'),
        [
          ['api_requests', true],
          ['a.b', false],
        ],
      );
    });

    test('an org may define at most MAX_METERS_PER_ORG meters', async () => {
      const orgId = newId('org');
      for (let index = 0; index < MAX_METERS_PER_ORG; index += 1) {
        ok(await keel.metering.createMeter(orgId, { name: `m${index}`, aggregation: 'count' }));
      }
      assert.equal(
        failed(await keel.metering.createMeter(orgId, { name: 'one.more', aggregation: 'count' })).code,
        'TOO_MANY_METERS',
      );
    });
  });

  describe('retention', () => {
    test('raw events and aggregates past their retention are pruned; recent ones stay', async () => {
      const pruneClock = manualClock('2026-11-23T10:00:00Z');
      const replica = testMetering(database.url, { clock: pruneClock });
      try {
        const orgId = newId('org');
        ok(await replica.metering.createMeter(orgId, { name: 'old.meter', aggregation: 'count' }));
        ok(await replica.metering.recordMeterEvents(orgId, [{ id: 'old', type: 'old.meter' }]));
        pruneClock.advance(EVENT_RETENTION_MS + HOUR_MS);
        ok(await replica.metering.recordMeterEvents(orgId, [{ id: 'new', type: 'old.meter' }]));
        const deleted = await replica.metering.prune();
        assert.ok(deleted.usage_events >= 1);
        const { rows } = await sql<{
          id: string;
        }>`select id from usage_events where org_id = ${orgId}`.execute(replica.database.db);
        assert.deepEqual(
          rows.map((row) => row.id),
          ['new'],
        );
        assert.equal(deleted.usage_hourly, 0, 'hourly aggregates are kept longer than raw events');
      } finally {
        await replica.close();
      }
    });
  });
});
