import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { BlockedAddressError, createSsrfGuard } from './ssrf.ts';

test('private, loopback, link-local, metadata and unspecified addresses are refused', () => {
  const guard = createSsrfGuard({ allow: [] });
  for (const address of [
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    'fe80::1',
    'fd00::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '224.0.0.1',
  ]) {
    assert.equal(guard.isAllowed(address), false, address);
  }
  for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111'])
    assert.equal(guard.isAllowed(address), true, address);
});

test('the operator allowlist admits chosen private addresses and ranges only', () => {
  const guard = createSsrfGuard({ allow: ['127.0.0.1', '10.0.5.0/24'] });
  assert.equal(guard.isAllowed('127.0.0.1'), true);
  assert.equal(guard.isAllowed('::ffff:127.0.0.1'), true);
  assert.equal(guard.isAllowed('10.0.5.9'), true);
  assert.equal(guard.isAllowed('10.0.6.9'), false);
  assert.equal(guard.isAllowed('169.254.169.254'), false);
});

test('URLs are checked for scheme, credentials and literal private hosts', () => {
  const guard = createSsrfGuard({ allow: [] });
  assert.equal(guard.checkUrl('https://hooks.example.com/keel').ok, true);
  assert.equal(guard.checkUrl('ftp://hooks.example.com').ok, false);
  assert.equal(guard.checkUrl('https://user:pw@hooks.example.com').ok, false);
  assert.equal(guard.checkUrl('http://169.254.169.254/latest/meta-data').ok, false);
  assert.equal(guard.checkUrl('http://[::1]:8080/').ok, false);
  assert.equal(guard.checkUrl('http://localhost:8080/').ok, false);
  assert.equal(createSsrfGuard({ allow: ['127.0.0.1'] }).checkUrl('http://localhost:8080/').ok, true);
});

test('a connection to a host that resolves to a blocked address is refused at connect time', async () => {
  const server = http.createServer((_req, res) => res.end('reached'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const request = (allow: string[]) =>
    new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: 'localhost', port, path: '/', lookup: createSsrfGuard({ allow }).lookup, family: 4 },
        (res) => {
          let body = '';
          res.on('data', (chunk) => {
            body += chunk;
          });
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.end();
    });
  try {
    await assert.rejects(request([]), (error: unknown) => error instanceof BlockedAddressError);
    assert.equal(await request(['127.0.0.1']), 'reached');
  } finally {
    server.close();
  }
});
