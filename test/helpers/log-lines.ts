import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/shared/logger.js';

/** A logger whose JSON lines land, parsed, in `lines`. */
export function loggerInto(lines: Record<string, unknown>[], level = 'info'): Logger {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return createLogger(level, sink);
}
