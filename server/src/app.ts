import fp from 'fastify-plugin';
import type { Config } from './config.ts';
import { idempotencyJobs, idempotencyPlugin } from './infra/http/idempotency.ts';
import { openapiPlugin } from './infra/http/openapi.ts';
import { type App, createPipeline } from './infra/http/pipeline.ts';
import type { JobDefinition } from './infra/jobs/runner.ts';
import { type KeelModule, vocabularyConflicts } from './infra/module.ts';
import { createRuntime, type Runtime, type RuntimeOverrides } from './infra/runtime.ts';
import { createIdentityAttestationsModule } from './modules/identity/attestations/index.ts';
import { createIdentityModule } from './modules/identity/index.ts';
import { createIdentityWalletsModule } from './modules/identity/wallets/index.ts';
import { createLedgerModule } from './modules/ledger/index.ts';
import { createEmailFlowsModule } from './platform/access/email-flows/index.ts';
import { type AccessModule, createAccessModule } from './platform/access/index.ts';
import { createSsoModule } from './platform/access/sso/index.ts';
import { createTwoFactorModule } from './platform/access/two-factor/index.ts';
import { createWalletModule } from './platform/access/wallet/index.ts';
import { createAuditModule } from './platform/audit/index.ts';
import { allEventDefinitions, createEventsModule } from './platform/events/index.ts';
import { createMeteringModule } from './platform/metering/index.ts';
import { operationsRoutes } from './platform/operations/routes.ts';
import { createWebhooksModule } from './platform/webhooks/index.ts';
import type { Role } from './roles.ts';
import { KEEL_VERSION } from './version.ts';

export { ROLES, type Role } from './roles.ts';

export interface BuildAppOptions extends RuntimeOverrides {
  /** A runtime shared with the workers; when absent the app builds one and closes it with itself. */
  readonly runtime?: Runtime;
  readonly role?: Role;
}

/**
 * Every platform feature and domain module, built in dependency order: a module receives the
 * services of the modules it needs as plain arguments. Memoised per runtime, so the HTTP app
 * and the workers of one process share one set of services.
 */
const assembled = new WeakMap<Runtime, readonly KeelModule[]>();

export function assembleModules(runtime: Runtime): readonly KeelModule[] {
  const existing = assembled.get(runtime);
  if (existing) return existing;
  const events = createEventsModule(runtime);
  // Built before access, so that access can record its security events through audit.service.
  const audit = createAuditModule(runtime);
  // Access comes first: its hooks authenticate, rate-limit and authorize every other module's routes.
  const access = createAccessModule(runtime, {
    events: events.service,
    mailer: runtime.mailer,
    audit: audit.service,
  });
  const webhooks = createWebhooksModule(runtime, {
    events: events.service,
    notifyOrgAdmins: (orgId, subject, text) => mailOrgAdmins(runtime, access.service, orgId, subject, text),
  });
  const modules: KeelModule[] = [
    access,
    createTwoFactorModule(runtime, { access: access.service }),
    createEmailFlowsModule(runtime, { access: access.service }),
    createWalletModule(runtime, { access: access.service }),
    createSsoModule(runtime, { access: access.service }),
    { name: 'idempotency', jobs: idempotencyJobs(runtime) },
    events,
    audit,
    webhooks,
  ];
  modules.push(createMeteringModule(runtime, { events: events.service }));
  modules.push(createLedgerModule(runtime, { events: events.service }));
  // Wallet linking needs `subjects`, and subjects read linked wallets through its directory: a
  // function read at call time, after both exist.
  const identity = createIdentityModule(runtime, {
    events: events.service,
    wallets: () => identityWallets.directory,
  });
  modules.push(identity);
  const identityWallets = createIdentityWalletsModule(runtime, {
    events: events.service,
    subjects: identity.subjects,
  });
  modules.push(identityWallets);
  modules.push(
    createIdentityAttestationsModule(runtime, { events: events.service, verdicts: identity.verifications }),
  );
  assembled.set(runtime, modules);
  return modules;
}

/** Owners and admins mailed about an org-wide problem (a disabled webhook endpoint). */
export const MAX_ADMINS_MAILED = 100;

async function mailOrgAdmins(
  runtime: Runtime,
  access: AccessModule['service'],
  orgId: string,
  subject: string,
  text: string,
): Promise<void> {
  const { items } = await access.listMembers(orgId, { limit: MAX_ADMINS_MAILED });
  for (const member of items) {
    if ((member.role === 'owner' || member.role === 'admin') && member.email) {
      await runtime.mailer.send({ to: member.email, subject: `[Keel] ${subject}`, text });
    }
  }
}

/**
 * The composition root: builds a ready Fastify app for `config` and never listens. Tests call
 * `app.inject()`; main.ts calls `app.listen()`.
 */
export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<App> {
  const runtime = options.runtime ?? (await createRuntime(config, options));
  const role = options.role ?? 'all';
  // Each error code, id prefix, permission and event type has one owner: a clash between two
  // modules' vocabularies is a programmer error, found before anything is served.
  const conflicts = vocabularyConflicts(assembleModules(runtime));
  if (conflicts.length > 0) throw new Error(`module vocabularies clash:\n${conflicts.join('\n')}`);
  const app = createPipeline(config, runtime);
  app.decorate('runtime', runtime);
  // Hooks first: features attach theirs to each route as it is registered (route-hooks.ts), so
  // every route, the operational ones and the API reference included, comes after them.
  if (role !== 'worker') {
    await app.register(idempotencyPlugin, { runtime });
    for (const module of assembleModules(runtime)) {
      if (module.hooks)
        await app.register(fp(async (root) => module.hooks!(root as App), { name: `${module.name}-hooks` }));
    }
  }
  await app.register(openapiPlugin, { version: KEEL_VERSION, webhooks: eventWebhooks });
  await app.register(async (scope) => operationsRoutes(scope as App, runtime));
  if (role !== 'worker') {
    for (const module of assembleModules(runtime)) {
      if (module.routes) await app.register(async (scope) => module.routes!(scope as App));
    }
  }
  app.addHook('onClose', async () => {
    // Last assembled, first closed: every module assembled after events (all that emit from a
    // close, such as the ledger draining its batches or metering flushing its counts) closes
    // before events waits out its last wake-up. Access, assembled first so that its hooks run
    // first, closes last; its close (key cache, limiter) emits nothing.
    for (const module of [...assembleModules(runtime)].reverse()) await module.close?.();
    if (!options.runtime) await runtime.close();
  });
  await app.ready();
  return app;
}

/** The OpenAPI `webhooks` section: one entry per event type in the catalogue. */
function eventWebhooks(): Record<string, unknown> {
  const webhooks: Record<string, unknown> = {};
  for (const event of allEventDefinitions()) {
    webhooks[event.type] = {
      post: {
        operationId: `webhook_${event.type.replaceAll('.', '_')}`,
        summary: event.description,
        description: `Event \`${event.type}\`, payload version ${event.version}. Delivered as the \`data\` member of the webhook body.`,
        tags: ['events'],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['id', 'type', 'version', 'createdAt', 'data'],
                properties: {
                  id: { type: 'string' },
                  type: { const: event.type },
                  version: { const: event.version },
                  createdAt: { type: 'string', format: 'date-time' },
                  data: event.payload,
                },
              },
            },
          },
        },
        responses: { '2XX': { description: 'Any 2xx acknowledges the delivery.' } },
      },
    };
  }
  return webhooks;
}

/** Every background job of every module, for the worker role. */
export function systemJobs(runtime: Runtime): JobDefinition[] {
  return assembleModules(runtime).flatMap((module) => module.jobs ?? []);
}

declare module 'fastify' {
  interface FastifyInstance {
    runtime: Runtime;
  }
}
