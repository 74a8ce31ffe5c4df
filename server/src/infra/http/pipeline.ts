import cors from '@fastify/cors';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { trace } from '@opentelemetry/api';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import FindMyWay from 'find-my-way';
import helmet from 'helmet';
import pino from 'pino';
import type { Config } from '../../config.ts';
import { newId } from '../ids.ts';
import type { ErrorReporter } from '../observability/error-reporter.ts';
import type { Logger } from '../observability/logger.ts';
import { type Metrics, UNMATCHED_ROUTE } from '../observability/metrics.ts';
import { type ErrorCode, type FieldError, KeelError, ProblemSchema, problem } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The org the request acts for, once authentication has resolved it. */
    orgId: string | undefined;
  }
}

/** An incoming X-Request-Id is kept only when it is this safe to echo and log. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{8,128}$/;
export const REQUEST_ID_HEADER = 'x-request-id';
/** HSTS max-age: one year. */
export const HSTS_MAX_AGE_SECONDS = 31_536_000;
/** Longest a browser may cache a CORS preflight answer. */
export const CORS_PREFLIGHT_MAX_AGE_SECONDS = 600;
const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
const METHODS_CHECKED_FOR_405 = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The security headers of every response, computed once by running helmet against a recording
 * response: helmet stays the source of truth for the header values, and no request pays for
 * building them again.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: unknown) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  helmet({
    hsts: { maxAge: HSTS_MAX_AGE_SECONDS, includeSubDomains: true },
    frameguard: { action: 'deny' },
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        frameAncestors: ["'none'"],
        imgSrc: ["'self'", 'data:'],
        styleSrc: ["'self'", "'unsafe-inline'"],
        scriptSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
      },
    },
  })({} as never, recorder as never, () => {});
  return Object.freeze(headers);
})();

/**
 * The logger of the one line per request: it writes to the same stream as the main logger but
 * without its redaction pass, since the line is built here from fields that hold no secret.
 */
function accessLogger(log: Logger): Logger {
  return pino(
    {
      name: log.bindings().name ?? 'keel',
      level: log.level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym],
  );
}

type LogMethod = (...args: unknown[]) => void;
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** A request logger that creates its pino child only when something logs through it. */
function lazyChildLogger(
  parent: FastifyBaseLogger,
  bindings: Record<string, unknown>,
  options: object,
): FastifyBaseLogger {
  let real: FastifyBaseLogger | undefined;
  const resolve = () => {
    real ??= parent.child(bindings, options);
    return real;
  };
  const lazy: Record<string, unknown> = {
    child: (childBindings: Record<string, unknown>, childOptions?: object) =>
      resolve().child(childBindings, childOptions),
    silent: () => {},
  };
  for (const level of LEVELS) {
    lazy[level] = (...args: unknown[]) => (resolve()[level] as LogMethod)(...args);
  }
  Object.defineProperty(lazy, 'level', {
    get: () => (real ?? parent).level,
    set: (value: string) => {
      resolve().level = value;
    },
  });
  return lazy as unknown as FastifyBaseLogger;
}

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface PipelineDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly errorReporter: ErrorReporter;
}

/**
 * The Fastify instance every request goes through: ids, one log line, metrics, security
 * headers, CORS, limits, and problem+json for every error. Routes are added by app.ts.
 */
export function createPipeline(config: Config, deps: PipelineDeps): App {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Most requests never log through request.log; its child logger is made on first use only.
    childLoggerFactory: (logger, bindings, options) => lazyChildLogger(logger, bindings, options),
    // One line per request is written by the onResponse hook below, with the fields Keel wants.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (request) => {
      const incoming = request.headers[REQUEST_ID_HEADER];
      return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : newId('req');
    },
    bodyLimit: config.http.bodyLimitBytes,
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    trustProxy: config.http.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: {
      customOptions: {
        // Report every bad field at once, and reject unknown fields rather than drop them.
        allErrors: true,
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
      },
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('orgId', undefined);
  app.addSchema(ProblemSchema);

  // Callback-style hooks: they run on every request, and skip the promise an async hook costs.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header(REQUEST_ID_HEADER, request.id);
    // With tracing on, the HTTP server span is named after the route pattern, not just the method.
    const span = trace.getActiveSpan();
    if (span && request.routeOptions.url) {
      span.updateName(`${request.method} ${request.routeOptions.url}`);
      span.setAttribute('http.route', request.routeOptions.url);
      span.setAttribute('keel.request_id', request.id);
    }
    done();
  });

  const accessLog = accessLogger(deps.log);
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const durationMs = reply.elapsedTime;
    deps.metrics.httpRequestDuration.observe(
      { route, method: request.method, status: String(reply.statusCode) },
      durationMs / 1000,
    );
    accessLog.info(
      {
        requestId: request.id,
        method: request.method,
        route,
        url: request.url.length > 256 ? `${request.url.slice(0, 256)}…` : request.url,
        status: reply.statusCode,
        durationMs: Math.round(durationMs * 1000) / 1000,
        orgId: request.orgId,
        ip: request.ip,
      },
      'request',
    );
    done();
  });

  app.register(cors, {
    origin: config.http.corsOrigins.includes('*') ? true : [...config.http.corsOrigins],
    credentials: !config.http.corsOrigins.includes('*'),
    maxAge: CORS_PREFLIGHT_MAX_AGE_SECONDS,
    exposedHeaders: [REQUEST_ID_HEADER, 'ratelimit', 'ratelimit-policy', 'retry-after', 'location'],
  });

  installProblemHandlers(app, deps);
  return app as unknown as App;
}

function sendProblem(
  reply: import('fastify').FastifyReply,
  code: ErrorCode,
  requestId: string,
  detail?: string,
  extra: ConstructorParameters<typeof KeelError>[2] = {},
) {
  const body = problem(code, requestId, detail, extra);
  for (const [name, value] of Object.entries(extra.headers ?? {})) reply.header(name, value);
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

const VALIDATION_CONTEXT: Record<string, FieldError['in']> = {
  body: 'body',
  querystring: 'query',
  params: 'params',
  headers: 'headers',
};

interface AjvError {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** Turns Ajv's errors into one entry per bad field, each with a JSON Pointer to it. */
export function fieldErrors(errors: readonly AjvError[], context: string | undefined): FieldError[] {
  const location = VALIDATION_CONTEXT[context ?? 'body'] ?? 'body';
  return errors.map((error) => {
    let pointer = error.instancePath;
    if (error.keyword === 'required') pointer += `/${String(error.params.missingProperty)}`;
    if (error.keyword === 'additionalProperties') pointer += `/${String(error.params.additionalProperty)}`;
    const message =
      error.keyword === 'additionalProperties' ? 'is not a known field' : (error.message ?? 'is not valid');
    return { path: pointer || '/', in: location, message };
  });
}

function installProblemHandlers(app: FastifyInstance, deps: PipelineDeps) {
  // Fastify answers an unknown method on a known path with 404; a router of every registered
  // route lets the not-found handler tell 405 (with Allow) from a true 404.
  const known = FindMyWay({ ignoreTrailingSlash: true });
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      try {
        known.on(method as 'GET', route.url, () => {});
      } catch {
        // A route Fastify accepted twice under different constraints: one entry is enough.
      }
    }
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = METHODS_CHECKED_FOR_405.filter(
      (method) => method !== request.method && known.find(method, path) !== null,
    );
    if (allowed.length > 0) {
      return sendProblem(
        reply,
        'METHOD_NOT_ALLOWED',
        request.id,
        `${request.method} is not allowed on ${path}`,
        {
          headers: { allow: allowed.join(', ') },
        },
      );
    }
    return sendProblem(reply, 'ROUTE_NOT_FOUND', request.id, `No route ${request.method} ${path}`);
  });

  app.setErrorHandler((error: FastifyError | KeelError, request, reply) => {
    if (error instanceof KeelError) {
      return sendProblem(reply, error.code, request.id, error.message, error.extra);
    }
    if (error.validation) {
      const errors = fieldErrors(error.validation as AjvError[], error.validationContext);
      const detail = errors.map((e) => `${e.in}${e.path} ${e.message}`).join('; ');
      return sendProblem(reply, 'VALIDATION_FAILED', request.id, detail, { errors });
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendProblem(reply, 'PAYLOAD_TOO_LARGE', request.id, error.message);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendProblem(reply, 'UNSUPPORTED_MEDIA_TYPE', request.id, error.message);
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendProblem(reply, 'MALFORMED_BODY', request.id, error.message);
    }
    if (error instanceof SyntaxError || (error.statusCode === 400 && error.code === undefined)) {
      return sendProblem(reply, 'MALFORMED_BODY', request.id, 'The body is not valid JSON');
    }
    if (error.statusCode === 429) return sendProblem(reply, 'RATE_LIMITED', request.id);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      const code = STATUS_FALLBACK[error.statusCode] ?? 'VALIDATION_FAILED';
      return sendProblem(reply, code, request.id, error.message);
    }
    // Anything else is a bug or an outage: log it whole, report it, and tell the client nothing
    // about the internals beyond the request id to quote.
    request.log.error({ err: error }, 'unhandled error');
    deps.errorReporter.capture(error, {
      requestId: request.id,
      route: request.routeOptions.url,
      method: request.method,
      orgId: request.orgId,
    });
    return sendProblem(
      reply,
      'INTERNAL',
      request.id,
      `An internal error occurred; quote request id ${request.id}`,
    );
  });
}

const STATUS_FALLBACK: Partial<Record<number, ErrorCode>> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};
