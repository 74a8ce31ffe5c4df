import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * The typed catalogue of every event Keel emits. A module declares its events with
 * `defineEvent` in its own `events.ts`; the catalogue validates payloads at emit time and feeds
 * the OpenAPI document's `webhooks` section.
 */
export interface EventDefinition<Schema extends TSchema = TSchema> {
  /** `<resource>.<happening>`, e.g. `transfer.posted`. */
  readonly type: string;
  /** Bumped when the payload changes incompatibly; consumers see it in every event. */
  readonly version: number;
  readonly description: string;
  readonly payload: Schema;
}

interface Registered {
  readonly definition: EventDefinition;
  readonly check: (value: unknown) => boolean;
  readonly errors: (value: unknown) => string;
}

const catalogue = new Map<string, Registered>();

export function defineEvent<Schema extends TSchema>(
  definition: EventDefinition<Schema>,
): EventDefinition<Schema> {
  if (!/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/.test(definition.type)) {
    throw new Error(`event type must look like resource.happening: ${definition.type}`);
  }
  const existing = catalogue.get(definition.type);
  if (existing && existing.definition !== definition)
    throw new Error(`event ${definition.type} is defined twice`);
  const validator = Compile(definition.payload);
  catalogue.set(definition.type, {
    definition,
    check: (value) => validator.Check(value),
    errors: (value) =>
      [...validator.Errors(value)]
        .slice(0, 5)
        .map((error) => `${error.instancePath || '/'} ${error.message}`)
        .join('; '),
  });
  return definition;
}

export function eventDefinition(type: string): EventDefinition | undefined {
  return catalogue.get(type)?.definition;
}

export function allEventDefinitions(): EventDefinition[] {
  return [...catalogue.values()]
    .map((entry) => entry.definition)
    .sort((a, b) => a.type.localeCompare(b.type));
}

/** Throws (a programmer error) when the type is unknown or the payload does not match. */
export function assertValidEvent(type: string, payload: unknown): EventDefinition {
  const entry = catalogue.get(type);
  if (!entry) throw new Error(`event ${type} is not in the catalogue: declare it with defineEvent`);
  if (!entry.check(payload)) throw new Error(`event ${type} payload is invalid: ${entry.errors(payload)}`);
  return entry.definition;
}

export type EventPayload<Definition> =
  Definition extends EventDefinition<infer Schema> ? Static<Schema> : never;
