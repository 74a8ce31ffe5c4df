import pino from 'pino';
import type { LogLevel } from '../../config.ts';
import { flushRequestLogs } from './request-log.ts';

export type Logger = pino.Logger;

/**
 * Paths never written to logs. Request headers are not logged at all by the request logger;
 * these cover objects that handlers or libraries log by accident.
 */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.privateKey',
  'password',
  'secret',
  'token',
  'apiKey',
  'privateKey',
];

export function createLogger(options: {
  level: LogLevel;
  pretty: boolean;
  name?: string;
  /** Where lines go instead of stdout (tests read them). */
  destination?: pino.DestinationStream;
}): Logger {
  const settings: pino.LoggerOptions = {
    name: options.name ?? 'keel',
    level: options.level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (options.destination) return pino(settings, options.destination);
  if (options.pretty) {
    return pino({
      ...settings,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  // Asynchronous writes: lines logged while a write is in flight go out together in one
  // syscall, instead of one blocking write per request. Nothing waits for a buffer to fill, and
  // pino flushes synchronously when the process exits.
  return pino(settings, pino.destination({ dest: 1, sync: false }));
}

/** Longest the exit waits for buffered log lines to reach stdout. */
const LOG_DRAIN_TIMEOUT_MS = 2_000;

interface LogStream {
  /** sonic-boom: an asynchronous write is in flight. */
  _writing?: boolean;
  flushSync?: () => void;
  once?: (event: 'drain', listener: () => void) => void;
}

/**
 * Writes every buffered log line, in order, before the process exits. The stream (sonic-boom)
 * writes asynchronously, and its synchronous flush writes what is queued even while an earlier
 * write is still in flight, so the last lines could land before that write, or be lost with it.
 * So: wait for the write in flight to finish, then write the rest synchronously.
 */
export async function drainLogs(log: Logger): Promise<void> {
  flushRequestLogs();
  const stream = (log as unknown as Record<symbol, LogStream | undefined>)[pino.symbols.streamSym];
  if (stream?._writing === true && typeof stream.once === 'function') {
    await Promise.race([
      new Promise<void>((resolve) => stream.once!('drain', resolve)),
      new Promise<void>((resolve) => setTimeout(resolve, LOG_DRAIN_TIMEOUT_MS).unref()),
    ]);
  }
  try {
    stream?.flushSync?.();
  } catch {
    // A stream that is not a file descriptor (pretty printing in a TTY) flushes on its own.
  }
}
