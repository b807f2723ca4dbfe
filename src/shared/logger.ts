import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout. Secrets never reach a log line: request headers are not logged, and these
 * paths are censored wherever they appear in a logged object.
 */
export const REDACTED_PATHS = [
  'api_key',
  'password',
  'webhook_secret',
  'secret',
  'req.headers.authorization',
  '*.api_key',
  '*.password',
  '*.webhook_secret',
  '*.secret',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'relais' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination as pino.DestinationStream | undefined,
  );
}
