import http from 'node:http';
import https from 'node:https';
import type { SsrfGuard } from '../../../infra/http/ssrf.ts';
import { RetryableFailure } from './resilience.ts';

/** Provider answers larger than this are cut off and treated as a provider failure. */
export const MAX_RESPONSE_BYTES = 256 * 1024;
/** Keep-alive sockets per provider host, shared by every org of this process. */
export const MAX_SOCKETS_PER_HOST = 256;
const USER_AGENT = 'Keel-Identity/1';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The parsed JSON body, or undefined when it is not JSON. */
  readonly json: unknown;
  readonly text: string;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly signal: AbortSignal;
}

/** Seconds or an HTTP date in Retry-After, as milliseconds. */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const header = Array.isArray(value) ? value[0] : value;
  if (!header) return undefined;
  if (/^\d+$/.test(header)) return Number(header) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/**
 * The HTTP client of the adapters: keep-alive agents whose DNS lookup is the SSRF guard (the
 * address checked is the address connected to), a response size cap, and abort by signal.
 * Transport failures (refused, reset, cut off) throw RetryableFailure; any HTTP answer,
 * whatever its status, is returned for the adapter to map.
 */
export function createProviderHttp(guard: SsrfGuard) {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, lookup: guard.lookup }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, lookup: guard.lookup }),
  };

  function request(options: HttpRequest): Promise<HttpAnswer> {
    const { url } = options;
    // A literal IP host skips DNS, so the guard's lookup never sees it: check it here.
    const checked = guard.checkUrl(url.toString());
    if (!checked.ok) return Promise.reject(new ProviderUrlRefused(checked.reason));
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method: options.method,
          agent: agents[url.protocol as 'http:' | 'https:'],
          signal: options.signal,
          headers: {
            accept: 'application/json',
            'user-agent': USER_AGENT,
            ...(body === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
            ...options.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              reject(new RetryableFailure('unavailable', 'response_too_large'));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
          });
          res.on('error', (error) => reject(transportFailure(error, options.signal)));
        },
      );
      req.on('error', (error) => reject(transportFailure(error, options.signal)));
      req.end(body);
    });
  }

  return {
    request,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

export type ProviderHttp = ReturnType<typeof createProviderHttp>;

/** The configured base URL is not one Keel may call (SSRF guard). */
export class ProviderUrlRefused extends Error {
  constructor(reason: string) {
    super(`provider URL refused: ${reason}`);
    this.name = 'ProviderUrlRefused';
  }
}

function transportFailure(error: Error, signal: AbortSignal): Error {
  // An abort is the caller's timeout or deadline: let withRetries classify it.
  if (signal.aborted || error.name === 'AbortError') return signal.reason ?? error;
  if (error.name === 'BlockedAddressError' || (error as { code?: string }).code === 'KEEL_SSRF_BLOCKED')
    return new ProviderUrlRefused(error.message);
  return new RetryableFailure('unavailable', 'provider_unreachable', error.message);
}

/** Maps the statuses every provider shares: 429 and 5xx are worth retrying. */
export function throwIfRetryable(answer: HttpAnswer, nowMs: number): void {
  if (answer.status === 429)
    throw new RetryableFailure(
      'unavailable',
      'rate_limited',
      'the provider rate-limited Keel',
      retryAfterMs(answer.headers['retry-after'], nowMs),
    );
  if (answer.status >= 500)
    throw new RetryableFailure(
      'unavailable',
      'provider_unavailable',
      `the provider answered ${answer.status}`,
    );
}

/** Joins a base URL (which may carry a path prefix) and a path of encoded segments. */
export function providerUrl(baseUrl: string, path: string, query?: Record<string, string>): URL {
  const base = baseUrl.endsWith('/') ? baseUrl.slice(0, -1) : baseUrl;
  const url = new URL(base + path);
  for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
  return url;
}
