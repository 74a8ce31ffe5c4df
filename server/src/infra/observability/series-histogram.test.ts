import assert from 'node:assert/strict';
import { test } from 'node:test';
import client from 'prom-client';
import { SeriesHistogram } from './series-histogram.ts';

test('scrapes exactly as prom-client’s own Histogram fed the same observations', async () => {
  const buckets = [0.001, 0.01, 0.1, 1];
  const observations: [string, string, string, number][] = [
    ['/a', 'GET', '200', 0.0005],
    ['/a', 'GET', '200', 0.001],
    ['/a', 'GET', '200', 0.05],
    ['/a', 'GET', '500', 3],
    ['/b/:id', 'POST', '201', 0.2],
    ['unmatched', 'GET', '404', 0.00001],
  ];
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const fast = new SeriesHistogram(
    'req_seconds',
    'Request time.',
    ['route', 'method', 'status'],
    buckets,
    ours,
  );
  const reference = new client.Histogram({
    name: 'req_seconds',
    help: 'Request time.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets,
    registers: [theirs],
  });
  for (const [route, method, status, value] of observations) {
    fast.series(route, method, status).observe(value);
    reference.observe({ route, method, status }, value);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
});

test('a series handed out once keeps counting, and reset empties the histogram', async () => {
  const registry = new client.Registry();
  const histogram = new SeriesHistogram('t_seconds', 'T.', ['route'], [1], registry);
  const series = histogram.series('/x');
  for (let i = 0; i < 3; i++) series.observe(0.5);
  assert.equal(histogram.series('/x'), series);
  assert.match(await registry.metrics(), /t_seconds_count\{route="\/x"\} 3/);
  histogram.reset();
  assert.doesNotMatch(await registry.metrics(), /t_seconds_count/);
});
