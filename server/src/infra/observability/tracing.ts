import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';

/** Spans held in memory while the collector is slow or down; beyond this, new spans are dropped. */
export const TRACE_QUEUE_MAX_SPANS = 2048;
/** Spans sent in one OTLP request. */
export const TRACE_EXPORT_BATCH_MAX_SPANS = 512;
/** How often queued spans are sent when the batch is not yet full. */
export const TRACE_EXPORT_INTERVAL_MS = 5_000;
/** How long one OTLP request may take before the batch is given up. */
export const TRACE_EXPORT_TIMEOUT_MS = 10_000;

/** OTLP/HTTP signal path appended to the base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT specifies. */
const OTLP_TRACES_PATH = '/v1/traces';

/**
 * Incoming paths that are never traced: probes and scrapes arrive every few seconds and would
 * drown real traffic (and their sampling cost) without telling anyone anything.
 */
const UNTRACED_PATH_PREFIXES = ['/health/'];
const UNTRACED_PATHS = ['/health', '/metrics'];

/**
 * CommonJS packages whose instrumentation hooks their main module. An ESM `import` of a CommonJS
 * package loads its main module without `require()`, so require-in-the-middle never sees it:
 * `import { Redis } from 'ioredis'` would stay uninstrumented. (pg's queries happen to be traced
 * either way, as its instrumentation also hooks lib/client.js, which pg requires internally.)
 * Requiring them once after the SDK started puts patched modules in the require cache, and later
 * ESM imports reuse that cached module.
 */
const PATCHED_ON_LOAD_PACKAGES = ['pg', 'ioredis'];

export interface Tracing {
  /**
   * Exports every span still queued, then stops. Waits about TRACE_EXPORT_TIMEOUT_MS at most, and
   * rejects if the collector did not take the spans in that time.
   */
  shutdown(): Promise<void>;
}

export function isUntracedPath(url: string | undefined): boolean {
  const path = (url ?? '').split('?', 1)[0] ?? '';
  return UNTRACED_PATHS.includes(path) || UNTRACED_PATH_PREFIXES.some((prefix) => path.startsWith(prefix));
}

export function tracesUrl(endpoint: string): string {
  return endpoint.replace(/\/+$/, '') + OTLP_TRACES_PATH;
}

/**
 * Starts OpenTelemetry tracing when an OTLP endpoint is configured. Must run before fastify, pg and
 * ioredis are first imported: the instrumentations patch those modules as they are loaded.
 * Without an endpoint nothing is loaded, so the default path pays neither start-up time nor memory.
 */
export async function startTracing(options: {
  endpoint: string | undefined;
  serviceName: string;
  serviceVersion: string;
}): Promise<Tracing | undefined> {
  if (options.endpoint === undefined) return undefined;

  const [{ NodeSDK, resources, tracing }, { OTLPTraceExporter }, { HttpInstrumentation }, pg, ioredis] =
    await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/instrumentation-http'),
      import('@opentelemetry/instrumentation-pg'),
      import('@opentelemetry/instrumentation-ioredis'),
    ]);

  const exporter = new OTLPTraceExporter({
    url: tracesUrl(options.endpoint),
    timeoutMillis: TRACE_EXPORT_TIMEOUT_MS,
  });
  const sdk = new NodeSDK({
    resource: resources.defaultResource().merge(
      resources.resourceFromAttributes({
        'service.name': options.serviceName,
        'service.version': options.serviceVersion,
      }),
    ),
    spanProcessors: [
      new tracing.BatchSpanProcessor(exporter, {
        maxQueueSize: TRACE_QUEUE_MAX_SPANS,
        maxExportBatchSize: TRACE_EXPORT_BATCH_MAX_SPANS,
        scheduledDelayMillis: TRACE_EXPORT_INTERVAL_MS,
        exportTimeoutMillis: TRACE_EXPORT_TIMEOUT_MS,
      }),
    ],
    // Metrics are served by /metrics (Prometheus) and logs go to stdout; without these empty lists
    // NodeSDK would also start OTLP metric and log exporters against the same endpoint.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request: IncomingMessage) => isUntracedPath(request.url),
      }),
      // A query or command outside any traced operation (job polling, the readiness probe) would be
      // a one-span trace of its own, every few seconds; only trace those inside a request's trace
      // (or a job that starts a span of its own).
      new pg.PgInstrumentation({ requireParentSpan: true }),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  const require = createRequire(import.meta.url);
  for (const packageName of PATCHED_ON_LOAD_PACKAGES) require(packageName);

  return {
    shutdown: () => sdk.shutdown(),
  };
}
