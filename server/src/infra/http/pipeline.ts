import ValidatorSelector from '@fastify/ajv-compiler';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { trace } from '@opentelemetry/api';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifySchemaCompiler,
  LogController,
} from 'fastify';
import FindMyWay from 'find-my-way';
import helmet from 'helmet';
import type { Config } from '../../config.ts';
import { newId } from '../ids.ts';
import type { ErrorReporter } from '../observability/error-reporter.ts';
import type { Logger } from '../observability/logger.ts';
import { type Metrics, UNMATCHED_ROUTE } from '../observability/metrics.ts';
import { requestLogWriter } from '../observability/request-log.ts';
import { corsPolicy } from './cors.ts';
import { type ErrorCode, type FieldError, KeelError, ProblemSchema, problem } from './errors.ts';
import { addRouteHooks } from './route-hooks.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The org the request acts for, once authentication has resolved it. */
    orgId: string | undefined;
  }
  interface FastifyInstance {
    /**
     * Checks run, in order, on a request that matches no route before it is answered 404 or 405
     * (authentication and the per-address rate limit): route hooks never see such requests.
     */
    unmatchedGuards: Array<(request: FastifyRequest, reply: FastifyReply) => Promise<void>>;
    /** Request validators and response serializers built on first use; `buildAll()` builds the rest. */
    deferredSchemas: DeferredSchemas;
  }
}

/** An incoming X-Request-Id is kept only when it is this safe to echo and log. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{8,128}$/;
export const REQUEST_ID_HEADER = 'x-request-id';
/** HSTS max-age: one year. */
export const HSTS_MAX_AGE_SECONDS = 31_536_000;
const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
const METHODS_CHECKED_FOR_405 = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The security headers of every API response: HSTS, `nosniff`, a CSP that loads nothing and may
 * not be framed (`frame-ancestors 'none'`, which supersedes X-Frame-Options in every current
 * browser), and `no-store`, so no cache keeps an answer that may hold a secret. JSON is never
 * rendered as a page; pages (/docs) get helmet's full set below.
 */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'strict-transport-security': `max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains`,
  'x-content-type-options': 'nosniff',
});

/** Routes that serve pages a browser renders (the interactive API reference). */
export const PAGE_ROUTE_PREFIX = '/docs';

/**
 * The security headers of pages a browser renders (/docs), computed once by running helmet
 * against a recording response: helmet stays the source of truth for the header values, and no
 * request pays for building them again.
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = (() => {
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

type SerializerFactory = ReturnType<typeof SerializerSelector>;
type ValidatorFactory = ReturnType<typeof ValidatorSelector>;
/** The route a compiler is asked for: its schema, method, URL and part or status. */
type RouteSchema = Parameters<FastifySchemaCompiler<unknown>>[0];
/** What the validator factory's compiler is given and returns (its published types are loose). */
type ValidatorCompile = (route: RouteSchema) => AjvValidate;
interface AjvValidate {
  (data: unknown, context?: unknown): unknown;
  errors?: unknown;
}

export interface DeferredSchemas {
  /** For Fastify's `schemaController.compilersFactory`. */
  readonly validators: ValidatorFactory;
  readonly serializers: SerializerFactory;
  /** Validators and serializers declared but not built yet. */
  pending(): number;
  /**
   * Builds every one not built yet, one per event-loop turn, so requests interleave. Rejects,
   * once all were tried, if any schema does not compile.
   */
  buildAll(): Promise<void>;
}

/**
 * Fastify's own request validators (Ajv) and response serializers (fast-json-stringify), built
 * when first needed instead of all before the server listens. Building them all was about a
 * fifth of the start-up's CPU time: every route declares a schema for each status it may answer,
 * most of them problem+json statuses that rarely occur. Each is built by the first request that
 * needs it, or by `buildAll`, which the server runs once it listens and the tests run to check
 * every schema. The compilers are Fastify's defaults, with the options Fastify gives them.
 * One difference: Fastify passes a custom factory header schemas as written, where for its own
 * it lowercases their property names first, so a route's `headers` schema names them in
 * lowercase (as Node.js hands them over).
 */
export function deferredSchemas(): DeferredSchemas {
  const pending = new Set<() => unknown>();
  const defer = <T>(compile: () => T) => {
    let built: T | undefined;
    const build = () => {
      built ??= compile();
      pending.delete(build);
      return built;
    };
    pending.add(build);
    return () => built ?? build();
  };
  const ajv = ValidatorSelector();
  const validators = ((...factoryArgs: Parameters<ValidatorFactory>) => {
    const compile = ajv(...factoryArgs) as unknown as ValidatorCompile;
    return (route: RouteSchema) => {
      const validator = defer(() => compile(route));
      // Fastify reads `errors` off the function it called, and passes Ajv the request as the
      // parent of the validated part (so Ajv may coerce or default it) when `schemaEnv` is set.
      const validate = (data: unknown, context?: unknown) => {
        const real = validator();
        const result = real(data, context);
        validate.errors = real.errors;
        return result;
      };
      validate.errors = null as unknown;
      validate.schemaEnv = true;
      return validate;
    };
  }) as unknown as ValidatorFactory;
  const fastJsonStringify = SerializerSelector();
  const serializers: SerializerFactory = (...factoryArgs) => {
    const compile = fastJsonStringify(...factoryArgs);
    return (route) => {
      const serializer = defer(() => compile(route));
      return (doc) => serializer()(doc);
    };
  };
  return {
    validators,
    serializers,
    pending: () => pending.size,
    async buildAll() {
      const failures: string[] = [];
      for (const build of [...pending]) {
        try {
          build();
        } catch (error) {
          failures.push((error as Error).message);
        }
        await new Promise(setImmediate);
      }
      if (failures.length > 0) {
        throw new Error(`${failures.length} route schema(s) do not compile: ${failures.join('; ')}`);
      }
    },
  };
}

type LogMethod = (...args: unknown[]) => void;

const LOG_METHODS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/**
 * The request logger Fastify makes for every request. Most requests never log through it, so
 * the pino child (and its bindings) is created on first use only; the methods live on the
 * prototype, so a request pays for one small object.
 */
class LazyRequestLogger {
  #real: FastifyBaseLogger | undefined;
  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Record<string, unknown>,
    private readonly options: object,
  ) {}
  resolve(): FastifyBaseLogger {
    this.#real ??= this.parent.child(this.bindings, this.options);
    return this.#real;
  }
  get level(): string {
    return (this.#real ?? this.parent).level;
  }
  set level(value: string) {
    this.resolve().level = value;
  }
  child(bindings: Record<string, unknown>, options?: object): FastifyBaseLogger {
    return this.resolve().child(bindings, options);
  }
  silent(): void {}
}
// fatal … trace: each makes the real logger, then logs through it.
for (const method of LOG_METHODS) {
  Object.defineProperty(LazyRequestLogger.prototype, method, {
    value(this: LazyRequestLogger, ...args: unknown[]) {
      (this.resolve()[method] as LogMethod)(...args);
    },
  });
}

/** What the response hook needs of a route, worked out on its first request. */
interface RouteStats {
  readonly pattern: string;
  readonly patternJson: string;
  /** The duration histogram's child per `METHOD STATUS`: no label hashing per request. */
  readonly durations: Map<string, { observe(value: number): void }>;
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
  const schemas = deferredSchemas();
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Most requests never log through request.log; its child logger is made on first use only.
    childLoggerFactory: (logger, bindings, options) =>
      new LazyRequestLogger(logger, bindings, options) as unknown as FastifyBaseLogger,
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
    schemaController: {
      compilersFactory: { buildValidator: schemas.validators, buildSerializer: schemas.serializers },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('orgId', undefined);
  app.decorate('unmatchedGuards', []);
  app.decorate('deferredSchemas', schemas);
  app.addSchema(ProblemSchema);

  // Callback-style hooks: they run on every request, and skip the promise an async hook costs.
  const tracing = config.otel.endpoint !== undefined;
  const cors = corsPolicy(config.http.corsOrigins);
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(API_SECURITY_HEADERS);
    reply.header(REQUEST_ID_HEADER, request.id);
    // A CORS preflight is answered here, before routing.
    if (cors(request, reply)) return;
    if (tracing) {
      // The HTTP server span is named after the route pattern, not just the method.
      const span = trace.getActiveSpan();
      const url = request.routeOptions.url;
      if (span && url) {
        span.updateName(`${request.method} ${url}`);
        span.setAttribute('http.route', url);
        span.setAttribute('keel.request_id', request.id);
      }
    }
    done();
  });
  addRouteHooks(app, (route) =>
    route.url.startsWith(PAGE_ROUTE_PREFIX)
      ? {
          onRequest: (_request, reply, done) => {
            reply.removeHeader('cache-control');
            reply.headers(PAGE_SECURITY_HEADERS);
            done();
          },
        }
      : undefined,
  );

  const writeRequestLine = requestLogWriter(deps.log);
  // Keyed by the route's config object, which is the same for each of its requests (and one
  // object serves every unmatched path).
  const routeStats = new WeakMap<object, RouteStats>();
  const statsOf = (config: object, url: string | undefined): RouteStats => {
    let stats = routeStats.get(config);
    if (stats === undefined) {
      const pattern = url ?? UNMATCHED_ROUTE;
      stats = { pattern, patternJson: JSON.stringify(pattern), durations: new Map() };
      routeStats.set(config, stats);
    }
    return stats;
  };
  app.addHook('onResponse', (request, reply, done) => {
    const options = request.routeOptions;
    const stats = statsOf(options.config, options.url);
    const durationMs = reply.elapsedTime;
    const status = reply.statusCode;
    const series = `${request.method} ${status}`;
    let histogram = stats.durations.get(series);
    if (histogram === undefined) {
      histogram = deps.metrics.httpRequestDuration.series(stats.pattern, request.method, String(status));
      stats.durations.set(series, histogram);
    }
    histogram.observe(durationMs / 1000);
    writeRequestLine({
      requestId: request.id,
      method: request.method,
      routeJson: stats.patternJson,
      url: request.url,
      status,
      durationMs,
      orgId: request.orgId,
      ip: request.ip,
    });
    done();
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

  app.setNotFoundHandler(async (request, reply) => {
    for (const guard of app.unmatchedGuards) await guard(request, reply);
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
