import type { FastifyReply, FastifyRequest } from 'fastify';

/** Longest a browser may cache a CORS preflight answer. */
export const CORS_PREFLIGHT_MAX_AGE_SECONDS = 600;
/** Methods a cross-origin caller may use (the API's). */
export const CORS_ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
/** Response headers a cross-origin caller's script may read. */
export const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'ratelimit',
  'ratelimit-policy',
  'retry-after',
  'location',
  'idempotent-replayed',
].join(', ');

/**
 * CORS by the Fetch standard, for the allowlist in `CORS_ORIGINS`. Only a request whose Origin
 * is allowed gets CORS headers. With an allowlist, every response carries `Vary: Origin`, since
 * the answer depends on it; without one (the default), no answer does, and none is sent. With `*`, any origin may call without credentials (cookies); with a list, the listed
 * origins may call with credentials. A preflight (OPTIONS with Access-Control-Request-Method)
 * from an allowed origin is answered 204 here, before routing; any other OPTIONS request is
 * routed as usual (405 with Allow on a known path).
 *
 * Returns `true` when it answered the request itself.
 */
export function corsPolicy(origins: readonly string[]) {
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);
  if (origins.length === 0) return (_request: FastifyRequest, _reply: FastifyReply): boolean => false;
  return (request: FastifyRequest, reply: FastifyReply): boolean => {
    reply.header('vary', 'Origin');
    const origin = request.headers.origin;
    if (origin === undefined || !(anyOrigin || allowed.has(origin))) return false;
    reply.header('access-control-allow-origin', anyOrigin ? '*' : origin);
    if (!anyOrigin) reply.header('access-control-allow-credentials', 'true');
    const requestedMethod = request.headers['access-control-request-method'];
    if (request.method !== 'OPTIONS' || requestedMethod === undefined) {
      reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
      return false;
    }
    reply.header('access-control-allow-methods', CORS_ALLOWED_METHODS);
    const requestedHeaders = request.headers['access-control-request-headers'];
    if (requestedHeaders !== undefined) reply.header('access-control-allow-headers', requestedHeaders);
    reply.header('vary', 'Origin, Access-Control-Request-Headers');
    reply.header('access-control-max-age', String(CORS_PREFLIGHT_MAX_AGE_SECONDS));
    reply.code(204).header('content-length', '0').send();
    return true;
  };
}
