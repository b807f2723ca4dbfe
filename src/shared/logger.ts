import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout, or in a rotated file (logging/log-file.ts). Secrets never reach a log line:
 * request headers are not logged, and these paths are censored wherever they appear in a logged object
 * (a tenant, a configuration with connector passwords and tokens, a Verify check body with its code).
 */
export const REDACTED_PATHS = [
  'api_key',
  'password',
  'webhook_secret',
  'secret',
  'token',
  'sealing_key',
  'otp_code',
  'authorization',
  'req.headers.authorization',
  '*.api_key',
  '*.password',
  '*.webhook_secret',
  '*.secret',
  '*.token',
  '*.sealing_key',
  // A whole configuration: connectors' SMPP passwords (metrics/admin tokens are `*.token` above).
  'connectors[*].password',
  'config.connectors[*].password',
  'config.*.token',
  'config.verify.sealing_key',
  // One-time codes: a Verify check body.
  'body.code',
  'req.body.code',
];

export function createLogger(
  level: string,
  destination?: NodeJS.WritableStream | pino.DestinationStream,
): Logger {
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
