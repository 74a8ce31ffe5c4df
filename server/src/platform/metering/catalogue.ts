/**
 * Meters: what usage is measured in. An org defines its own meters for the events it sends;
 * Keel's modules declare built-in meters here with `defineMeter` (the gateway's compute units,
 * for example), which every org has without defining them.
 */
export const AGGREGATIONS = ['sum', 'count', 'max'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export interface MeterDefinition {
  readonly name: string;
  readonly aggregation: Aggregation;
  readonly description: string;
  readonly unit?: string;
}

/** A meter name: lower case words joined by `_`, `.` or `-`, like a CloudEvents type. */
export const METER_NAME_PATTERN = '^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)*$';
export const MAX_METER_NAME_LENGTH = 64;
const METER_NAME = new RegExp(METER_NAME_PATTERN);

const builtIn = new Map<string, MeterDefinition>();

export function defineMeter(definition: MeterDefinition): MeterDefinition {
  if (!METER_NAME.test(definition.name) || definition.name.length > MAX_METER_NAME_LENGTH) {
    throw new Error(`meter name must match ${METER_NAME_PATTERN}: ${definition.name}`);
  }
  const existing = builtIn.get(definition.name);
  if (existing && existing !== definition) throw new Error(`meter ${definition.name} is defined twice`);
  builtIn.set(definition.name, definition);
  return definition;
}

export function builtInMeter(name: string): MeterDefinition | undefined {
  return builtIn.get(name);
}

export function builtInMeters(): MeterDefinition[] {
  return [...builtIn.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Every authenticated API request, counted by org, key, route and hour. */
export const API_REQUESTS = defineMeter({
  name: 'api_requests',
  aggregation: 'count',
  description: 'Authenticated API requests, by key and route.',
  unit: 'requests',
});
