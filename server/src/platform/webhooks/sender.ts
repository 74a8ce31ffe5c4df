import http from 'node:http';
import https from 'node:https';
import { Webhook } from 'standardwebhooks';
import type { SsrfGuard } from '../../infra/http/ssrf.ts';

/** A receiver must answer within this long (Standard Webhooks: 15 s). */
export const DELIVERY_TIMEOUT_MS = 15_000;
/** Bodies larger than this are not sent (Standard Webhooks: 256 KiB). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** How much of a receiver's answer is kept with the attempt. */
export const RESPONSE_EXCERPT_BYTES = 1024;
/** Keep-alive sockets per receiver host, shared by all deliveries of this process. */
export const MAX_SOCKETS_PER_HOST = 64;
const USER_AGENT = 'Keel-Webhooks/1';

export interface SignedRequest {
  readonly url: string;
  readonly messageId: string;
  readonly body: string;
  /** Every secret currently valid; each adds a signature, so receivers may rotate without downtime. */
  readonly secrets: readonly string[];
  readonly timestamp: Date;
}

export interface SendResult {
  readonly status: number | undefined;
  readonly retryAfter: string | undefined;
  readonly excerpt: string | undefined;
  readonly error: string | undefined;
  readonly durationMs: number;
}

/** The Standard Webhooks headers: id, timestamp (Unix seconds) and space-separated `v1,` signatures. */
export function signatureHeaders(request: SignedRequest): Record<string, string> {
  const signatures = request.secrets.map((secret) =>
    new Webhook(secret).sign(request.messageId, request.timestamp, request.body),
  );
  return {
    'webhook-id': request.messageId,
    'webhook-timestamp': String(Math.floor(request.timestamp.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}

export function createSender(guard: SsrfGuard) {
  const agents = {
    'http:': new http.Agent({
      keepAlive: true,
      maxSockets: MAX_SOCKETS_PER_HOST,
      lookup: guard.lookup,
    } as http.AgentOptions),
    'https:': new https.Agent({
      keepAlive: true,
      maxSockets: MAX_SOCKETS_PER_HOST,
      lookup: guard.lookup,
    } as https.AgentOptions),
  };

  async function send(request: SignedRequest): Promise<SendResult> {
    const startedAt = performance.now();
    const elapsed = () => Math.round(performance.now() - startedAt);
    const url = new URL(request.url);
    const bodyBytes = Buffer.byteLength(request.body);
    if (bodyBytes > MAX_PAYLOAD_BYTES) {
      return {
        status: undefined,
        retryAfter: undefined,
        excerpt: undefined,
        error: `payload is ${bodyBytes} bytes, over ${MAX_PAYLOAD_BYTES}`,
        durationMs: 0,
      };
    }
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<SendResult>((resolve) => {
      const req = transport.request(
        url,
        {
          method: 'POST',
          agent: agents[url.protocol as 'http:' | 'https:'],
          // The guard is also the lookup here, so the checked address is the one connected to.
          lookup: guard.lookup,
          timeout: DELIVERY_TIMEOUT_MS,
          headers: {
            'content-type': 'application/json',
            'content-length': String(bodyBytes),
            'user-agent': USER_AGENT,
            ...signatureHeaders(request),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (chunk: Buffer) => {
            if (kept < RESPONSE_EXCERPT_BYTES) {
              chunks.push(chunk.subarray(0, RESPONSE_EXCERPT_BYTES - kept));
              kept += Math.min(chunk.length, RESPONSE_EXCERPT_BYTES - kept);
            }
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode,
              retryAfter: res.headers['retry-after'],
              excerpt: Buffer.concat(chunks).toString('utf8'),
              error: undefined,
              durationMs: elapsed(),
            }),
          );
          res.on('error', (error) =>
            resolve({
              status: res.statusCode,
              retryAfter: undefined,
              excerpt: undefined,
              error: error.message,
              durationMs: elapsed(),
            }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${DELIVERY_TIMEOUT_MS} ms`)));
      req.on('error', (error) =>
        resolve({
          status: undefined,
          retryAfter: undefined,
          excerpt: undefined,
          error: error.message,
          durationMs: elapsed(),
        }),
      );
      req.end(request.body);
    });
  }

  return {
    send,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

export type Sender = ReturnType<typeof createSender>;
