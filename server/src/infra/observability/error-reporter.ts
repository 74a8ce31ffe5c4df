/** What a captured error is tagged with; enough to find the request in the logs and traces. */
export interface ErrorContext {
  requestId?: string;
  route?: string;
  orgId?: string;
  method?: string;
}

export interface ErrorReporter {
  /** Reports an unexpected error. Never throws and never blocks: delivery happens in the background. */
  capture(error: unknown, context?: ErrorContext): void;
  /** Waits until queued reports are sent, or until the timeout passes; call before the process exits. */
  flush(timeoutMs?: number): Promise<void>;
}

/** How long flush() waits for queued reports when the caller gives no timeout. */
export const DEFAULT_ERROR_FLUSH_TIMEOUT_MS = 2_000;

/** Lines of source sent around each stack frame (the Sentry default), so an event shows the failing code. */
const SOURCE_CONTEXT_LINES = 5;

const noopErrorReporter: ErrorReporter = {
  capture: () => {},
  flush: async () => {},
};

/**
 * Reports unexpected errors to Sentry (or any server speaking its envelope protocol) when a DSN
 * is configured; otherwise returns a reporter that does nothing, and loads nothing.
 */
export async function createErrorReporter(options: {
  dsn: string | undefined;
  environment?: string;
  release?: string;
}): Promise<ErrorReporter> {
  if (options.dsn === undefined) return noopErrorReporter;

  const Sentry = await import('@sentry/node');
  Sentry.init({
    dsn: options.dsn,
    environment: options.environment,
    release: options.release,
    // Our OpenTelemetry setup (tracing.ts) owns tracing, context propagation and module patching.
    // Sentry only reports errors: no tracer provider, no spans, no ESM loader hooks.
    skipOpenTelemetrySetup: true,
    registerEsmLoaderHooks: false,
    // Nothing from requests, cookies, queries, database rows or stack variables is collected, even by
    // an integration added later: any of them may carry credentials or personal data.
    dataCollection: {
      userInfo: false,
      cookies: false,
      httpHeaders: false,
      httpBodies: [],
      urlQueryParams: false,
      databaseQueryData: false,
      stackFrameVariables: false,
      frameContextLines: SOURCE_CONTEXT_LINES,
    },
    // An explicit list instead of the defaults, each default left out for a reason:
    // - http, nativeNodeFetch, console: breadcrumbs of outgoing URLs (provider URLs carry API keys)
    //   and of console output; http also attaches incoming request headers to events.
    // - requestData: copies the request (headers, cookies, body) into events.
    // - onUncaughtException, onUnhandledRejection: they install process handlers and exit the
    //   process themselves; the process lifecycle belongs to main.ts, which captures and flushes.
    // - localVariables: would send the values of local variables, secrets included.
    // - processSession, childProcess, modules, systemError: sessions and noise we do not use.
    // - Performance integrations are never added, whatever SENTRY_TRACES_SAMPLE_RATE says, because
    //   defaultIntegrations is false; they would patch pg and ioredis a second time.
    defaultIntegrations: false,
    integrations: [
      Sentry.eventFiltersIntegration(),
      Sentry.functionToStringIntegration(),
      Sentry.linkedErrorsIntegration(),
      Sentry.contextLinesIntegration(),
      Sentry.nodeContextIntegration(),
    ],
    beforeSend: (event) => {
      // Belt and braces for the integrations above: whatever added them, request headers, cookies
      // and bodies may hold credentials and never leave the process.
      delete event.request;
      delete event.breadcrumbs;
      return event;
    },
  });

  return {
    capture(error, context = {}) {
      const { requestId, route, orgId, method } = context;
      Sentry.captureException(error, {
        tags: withoutUndefined({ requestId, route, orgId, method }),
      });
    },
    async flush(timeoutMs = DEFAULT_ERROR_FLUSH_TIMEOUT_MS) {
      await Sentry.flush(timeoutMs);
    },
  };
}

function withoutUndefined(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}
