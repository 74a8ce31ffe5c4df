import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { addRouteHooks } from './route-hooks.ts';

test('route hooks run only on the routes they were attached to, after the global ones, in order', async () => {
  const app = Fastify();
  const ran: string[] = [];
  app.addHook('onRequest', async (request) => {
    ran.push(`global ${request.url}`);
  });
  addRouteHooks(app, (route) =>
    route.config && (route.config as { tagged?: boolean }).tagged
      ? {
          onRequest: async (request) => {
            ran.push(`first ${request.method} ${route.url}`);
          },
          onResponse: (request, _reply, done) => {
            ran.push(`done ${request.method} ${route.url}`);
            done();
          },
        }
      : undefined,
  );
  addRouteHooks(app, (route) =>
    route.url === '/tagged'
      ? {
          onRequest: async () => {
            ran.push('second');
          },
        }
      : undefined,
  );
  app.get('/tagged', { config: { tagged: true } }, async () => ({ ok: true }));
  app.get('/plain', async () => ({ ok: true }));
  await app.ready();

  await app.inject({ method: 'GET', url: '/tagged' });
  assert.deepEqual(ran, ['global /tagged', 'first GET /tagged', 'second', 'done GET /tagged']);

  ran.length = 0;
  await app.inject({ method: 'HEAD', url: '/tagged' });
  assert.deepEqual(ran, ['global /tagged', 'first HEAD /tagged', 'second', 'done HEAD /tagged']);

  ran.length = 0;
  await app.inject({ method: 'GET', url: '/plain' });
  assert.deepEqual(ran, ['global /plain']);
  await app.close();
});

test('a route that declares hooks of its own keeps them, before the attached ones', async () => {
  const app = Fastify();
  const ran: string[] = [];
  addRouteHooks(app, () => ({
    preHandler: async () => {
      ran.push('attached');
    },
  }));
  app.get(
    '/own',
    {
      preHandler: async () => {
        ran.push('own');
      },
    },
    async () => ({ ok: true }),
  );
  await app.ready();
  await app.inject({ method: 'GET', url: '/own' });
  assert.deepEqual(ran, ['own', 'attached']);
  await app.close();
});
