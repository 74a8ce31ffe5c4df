import pino from 'pino';
import type { LogLevel } from '../../config.ts';

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
