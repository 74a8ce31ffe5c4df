import type { App } from './http/pipeline.ts';
import type { JobDefinition } from './jobs/runner.ts';

/**
 * What a platform feature or domain module contributes to the program: its routes (a Fastify
 * plugin registered under the app) and its background jobs. Each module's `index.ts` exports a
 * factory `createXModule(deps)` returning this plus its public service, and app.ts assembles
 * them in dependency order.
 */
export interface KeelModule {
  readonly name: string;
  /**
   * Hooks that apply to every route (authentication, rate limits), registered on the root
   * instance before any module's routes. Called for the `all` and `api` roles.
   */
  readonly hooks?: (app: App) => Promise<void>;
  /** Registers the module's routes in a scope of their own. Called for the `all` and `api` roles. */
  readonly routes?: (app: App) => Promise<void>;
  /** Background and scheduled jobs. Run by the `all` and `worker` roles. */
  readonly jobs?: readonly JobDefinition[];
  /**
   * A long-running loop (a dispatcher, a poller) for the `all` and `worker` roles: started after
   * the job worker, stopped before it. It must be safe to run in any number of processes.
   */
  readonly background?: { start(): Promise<void>; stop(): Promise<void> };
  /** Called once when the process shuts down, after HTTP has drained. */
  readonly close?: () => Promise<void>;
}
