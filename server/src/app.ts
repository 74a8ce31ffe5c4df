import type { Config } from './config.ts';
import { idempotencyJobs, idempotencyPlugin } from './infra/http/idempotency.ts';
import { openapiPlugin } from './infra/http/openapi.ts';
import { type App, createPipeline } from './infra/http/pipeline.ts';
import type { JobDefinition } from './infra/jobs/runner.ts';
import { createRuntime, type Runtime, type RuntimeOverrides } from './infra/runtime.ts';
import { operationsRoutes } from './platform/operations/routes.ts';
import { KEEL_VERSION } from './version.ts';

/** `all` serves the API and runs the workers; `api` and `worker` split them across replicas. */
export const ROLES = ['all', 'api', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export interface BuildAppOptions extends RuntimeOverrides {
  /** A runtime shared with the workers; when absent the app builds one and closes it with itself. */
  readonly runtime?: Runtime;
  readonly role?: Role;
}

/**
 * The composition root: builds a ready Fastify app for `config` and never listens. Tests call
 * `app.inject()`; main.ts calls `app.listen()`.
 */
export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<App> {
  const runtime = options.runtime ?? (await createRuntime(config, options));
  const role = options.role ?? 'all';
  const app = createPipeline(config, runtime);
  app.decorate('runtime', runtime);
  await app.register(openapiPlugin, { version: KEEL_VERSION });
  await app.register(async (scope) => operationsRoutes(scope as App, runtime));
  if (role !== 'worker') {
    await app.register(idempotencyPlugin, { runtime });
  }
  if (!options.runtime) app.addHook('onClose', () => runtime.close());
  await app.ready();
  return app;
}

/** Every background job of every module, for the worker role. */
export function systemJobs(runtime: Runtime): JobDefinition[] {
  return [...idempotencyJobs(runtime)];
}

declare module 'fastify' {
  interface FastifyInstance {
    runtime: Runtime;
  }
}
