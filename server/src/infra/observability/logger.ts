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

export function createLogger(options: { level: LogLevel; pretty: boolean; name?: string }): Logger {
  return pino({
    name: options.name ?? 'keel',
    level: options.level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...(options.pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
