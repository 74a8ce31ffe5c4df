import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createOrgWithApiKey } from '../../../test/fixtures.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '../../../test/harness.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';
import { assembleModules } from '../../app.ts';
import { manualClock } from '../../infra/clock.ts';
import { DELIVERY_LEASE_MS, type Dispatcher } from './dispatcher.ts';
import type { WebhooksService } from './service.ts';

const KEEL_BIN = path.resolve(import.meta.dirname, '../../../bin/keel.js');

const waitFor = async (predicate: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

interface Hit {
  readonly id: string;
  readonly path: string;
}

describe('webhook faults', () => {
  let database: TestDatabase;
  let smtp: TestSmtpServer;
  let keel: TestApp;
  const clock = manualClock(new Date());
  const hits: Hit[] = [];
  let answer: (hit: Hit, res: http.ServerResponse) => void = (_hit, res) => res.writeHead(204).end();
  let receiver: http.Server;
  let port = 0;
  let worker: ChildProcess | undefined;

  before(async () => {
    database = await createTestDatabase();
    smtp = await startTestSmtpServer();
    receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const hit = { id: String(req.headers['webhook-id']), path: req.url ?? '/' };
        hits.push(hit);
        answer(hit, res);
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as { port: number }).port;
    keel = await buildTestApp(database, {
      clock,
      config: {
        webhooks: { ssrfAllowlist: ['127.0.0.1'] },
        mail: { smtpUrl: smtp.url, from: 'keel@example.com' },
      },
    });
  });
  after(async () => {
    worker?.kill('SIGKILL');
    await keel.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
    await smtp.close();
    await database.drop();
  });

  const webhooksOf = () =>
    assembleModules(keel.runtime).find((module) => module.name === 'webhooks') as unknown as {
      service: WebhooksService;
      dispatcher: Dispatcher;
    };

  test('a worker killed mid-delivery loses nothing: the delivery is sent again', async () => {
    const owner = await createOrgWithApiKey(keel.app);
    // The test clock stands still: move it, so the fixture's own events predate the endpoint.
    clock.advance(1_000);
    const { service } = webhooksOf();
    const { endpoint } = await service.createEndpoint(owner.orgId, {
      url: `http://127.0.0.1:${port}/killed`,
    });
    // 1. The receiver holds the first request open, so the worker is mid-delivery when it dies.
    answer = (_hit, res) => {
      // The first request is never answered.
      if (hits.filter((h) => h.path === '/killed').length > 1) res.writeHead(204).end();
    };
    const delivery = await service.sendTestEvent(owner.orgId, endpoint.id);
    worker = spawn(process.execPath, [KEEL_BIN, 'start', '--role', 'worker'], {
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        REDIS_URL: '',
        PORT: '0',
        LOG_LEVEL: 'warn',
        KEEL_MIGRATE_ON_START: 'false',
        SSRF_ALLOWLIST: '127.0.0.1',
        KEEL_MASTER_KEY: keel.config.masterKey,
      },
      stdio: 'ignore',
    });
    await waitFor(() => hits.some((hit) => hit.path === '/killed'), 60_000);
    // 2. kill -9: no shutdown runs; the delivery stays claimed under its lease.
    worker.kill('SIGKILL');
    await new Promise((resolve) => worker!.once('exit', resolve));
    worker = undefined;
    const claimed = await service.getDelivery(owner.orgId, delivery.id);
    assert.equal(claimed.status, 'sending');
    // 3. Another worker (here, in this process) claims it once the lease has run out, and sends it.
    clock.set(new Date(Date.now() + DELIVERY_LEASE_MS + 1_000));
    const { dispatcher } = webhooksOf();
    await dispatcher.start();
    try {
      await waitFor(async () => (await service.getDelivery(owner.orgId, delivery.id)).status === 'succeeded');
    } finally {
      await dispatcher.stop();
    }
    const sent = hits.filter((hit) => hit.path === '/killed');
    assert.equal(sent.length, 2, 'sent again once');
    assert.equal(sent[0]!.id, sent[1]!.id, 'with the same webhook-id, so the receiver can deduplicate');
  });

  test('disabling an endpoint mails the org’s owners and admins', async () => {
    const owner = await createOrgWithApiKey(keel.app);
    const ownerEmail = (
      await keel.runtime.database.db
        .selectFrom('users')
        .select('email')
        .where('id', '=', owner.ownerId)
        .executeTakeFirstOrThrow()
    ).email!;
    const { service, dispatcher } = webhooksOf();
    const { endpoint } = await service.createEndpoint(owner.orgId, { url: `http://127.0.0.1:${port}/gone` });
    answer = (_hit, res) => res.writeHead(410).end();
    await service.sendTestEvent(owner.orgId, endpoint.id);
    await dispatcher.start();
    try {
      const mail = await smtp.waitForMail(ownerEmail, 20_000);
      assert.match(mail.subject, /webhook endpoint was disabled/);
      assert.match(mail.text, new RegExp(endpoint.id));
    } finally {
      await dispatcher.stop();
    }
    assert.equal((await service.getEndpoint(owner.orgId, endpoint.id)).enabled, false);
  });
});
