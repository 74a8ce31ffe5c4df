import pino from 'pino';
import type { Logger } from './logger.ts';

/** Longest request URL written to the request log line; longer ones are cut and marked. */
export const MAX_LOGGED_URL_LENGTH = 256;

/** The fields of the one log line written per request. */
export interface RequestLogEntry {
  readonly requestId: string;
  readonly method: string;
  /** The route pattern (`/v1/things/:id`), already a JSON string literal (quoted once per route). */
  readonly routeJson: string;
  readonly url: string;
  readonly status: number;
  readonly durationMs: number;
  readonly orgId: string | undefined;
  readonly ip: string;
}

const SAFE_TOKEN = /^[\w.:~-]*$/;
/** Ids and methods are plain tokens (validated on the way in); anything else is escaped. */
const quote = (value: string): string => (SAFE_TOKEN.test(value) ? `"${value}"` : JSON.stringify(value));

let isoSecond = Number.NaN;
let isoPrefix = '';
/**
 * `new Date().toISOString()`, with the part up to the second formatted once per second: the
 * formatting costs more than the rest of the line.
 */
export function isoTimeNow(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const ms = now - second * 1000;
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/** Writers with lines waiting for the end of the event loop turn; see `flushRequestLogs`. */
const pendingWriters = new Set<() => void>();

/**
 * Writes every request line still waiting for the end of its event loop turn. For the exit
 * path, just before the log stream is flushed synchronously.
 */
export function flushRequestLogs(): void {
  for (const flush of [...pendingWriters]) flush();
}

/**
 * Writes the request line in exactly the shape the pino logger writes every other line (same
 * level label, ISO time, pid, hostname and name, same stream), but builds it directly: it runs
 * once per request, its fields are known and hold no secret, so neither pino's generic
 * serialisation nor its redaction pass is needed. Honours the logger's level at each call.
 *
 * The lines of one event loop turn go to the stream as one write at the end of the turn. The
 * stream (sonic-boom) measures its pending buffer on every write, which makes a write per line
 * cost more than building the line; one write per turn pays that once for all of them.
 */
export function requestLogWriter(log: Logger): (entry: RequestLogEntry) => void {
  const fields = log as unknown as Record<symbol, unknown>;
  const stream = fields[pino.symbols.streamSym] as pino.DestinationStream;
  // `,"pid":…,"hostname":"…","name":"keel"`, exactly as pino serialised the logger's bindings.
  const bindings = String(fields[pino.symbols.chindingsSym] ?? '');
  let pending: string[] = [];
  const flush = () => {
    pendingWriters.delete(flush);
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    stream.write(lines.length === 1 ? lines[0]! : lines.join(''));
  };
  return (entry) => {
    if (!log.isLevelEnabled('info')) return;
    const url =
      entry.url.length > MAX_LOGGED_URL_LENGTH ? `${entry.url.slice(0, MAX_LOGGED_URL_LENGTH)}…` : entry.url;
    if (pending.length === 0) {
      pendingWriters.add(flush);
      setImmediate(flush);
    }
    pending.push(
      `{"level":"info","time":"${isoTimeNow()}"${bindings},"requestId":${quote(entry.requestId)}` +
        `,"method":${quote(entry.method)},"route":${entry.routeJson},"url":${JSON.stringify(url)}` +
        `,"status":${entry.status},"durationMs":${Math.round(entry.durationMs * 1000) / 1000}` +
        `${entry.orgId === undefined ? '' : `,"orgId":${quote(entry.orgId)}`},"ip":${quote(entry.ip)}` +
        ',"msg":"request"}\n',
    );
  };
}
