import { allErrors, type ErrorEntry } from './http/errors.ts';
import type { App } from './http/pipeline.ts';
import { registeredIdPrefixes } from './ids.ts';
import type { JobDefinition } from './jobs/runner.ts';
import { declaredPermissions, type PermissionDeclaration } from './permissions.ts';

/**
 * What a module names as its own: the results of its `defineErrors`, `defineIdPrefixes`,
 * `definePermissions` and `defineEvent` calls. `buildApp` checks at start-up that each code,
 * prefix, permission and event type is listed by one module only, and that the owner a
 * declaration names is the module that lists it.
 */
export interface ModuleVocabulary {
  readonly errors?: Readonly<Record<string, ErrorEntry>>;
  readonly idPrefixes?: readonly string[];
  readonly permissions?: Readonly<Record<string, PermissionDeclaration>>;
  readonly events?: readonly { readonly type: string }[];
}

/**
 * What a platform feature or domain module contributes to the program: its routes (a Fastify
 * plugin registered under the app) and its background jobs. Each module's `index.ts` exports a
 * factory `createXModule(deps)` returning this plus its public service, and app.ts assembles
 * them in dependency order.
 */
export interface KeelModule {
  /** Also the owner its `defineErrors`, `defineIdPrefixes` and `definePermissions` calls name. */
  readonly name: string;
  /** The error codes, id prefixes, permissions and event types the module owns. */
  readonly vocabulary?: ModuleVocabulary;
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

/**
 * Every way the modules' vocabularies break "one owner per word": a code, prefix, permission or
 * event type listed by two modules, or listed by a module other than the one its declaration
 * names as owner. Empty when all is well.
 */
export function vocabularyConflicts(modules: readonly Pick<KeelModule, 'name' | 'vocabulary'>[]): string[] {
  const conflicts: string[] = [];
  const owners = {
    'error code': registeredOwners(allErrors().map((entry) => [entry.code, entry.owner])),
    'id prefix': registeredIdPrefixes(),
    permission: registeredOwners([...declaredPermissions()].map(([name, entry]) => [name, entry.owner])),
    'event type': new Map<string, string>(),
  };
  const listedBy = new Map<string, string>();
  for (const module of modules) {
    const vocabulary = module.vocabulary ?? {};
    const words: (readonly [keyof typeof owners, string])[] = [
      ...Object.keys(vocabulary.errors ?? {}).map((code) => ['error code', code] as const),
      ...(vocabulary.idPrefixes ?? []).map((prefix) => ['id prefix', prefix] as const),
      ...Object.keys(vocabulary.permissions ?? {}).map((name) => ['permission', name] as const),
      ...(vocabulary.events ?? []).map((event) => ['event type', event.type] as const),
    ];
    for (const [kind, word] of words) {
      const key = `${kind} ${word}`;
      const earlier = listedBy.get(key);
      if (earlier !== undefined) conflicts.push(`${key} is listed by ${earlier} and by ${module.name}`);
      else listedBy.set(key, module.name);
      const owner = owners[kind].get(word);
      if (kind !== 'event type' && owner !== module.name) {
        conflicts.push(
          owner === undefined
            ? `${key}, listed by ${module.name}, is not declared`
            : `${key} is declared by ${owner} but listed by ${module.name}`,
        );
      }
    }
  }
  return conflicts;
}

function registeredOwners(entries: readonly (readonly [string, string])[]): ReadonlyMap<string, string> {
  return new Map(entries);
}
