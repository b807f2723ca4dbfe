import { type ParseArgsConfig, parseArgs } from 'node:util';

/**
 * parseArgs for the benchmark commands: `-h`/`--help` (each command declares it) prints the usage;
 * an unknown option or a missing value prints what is wrong and the usage, and exits with 2, instead
 * of a stack trace.
 */
export function benchArgs<T extends ParseArgsConfig>(
  command: string,
  usage: string,
  config: T,
): ReturnType<typeof parseArgs<T>>['values'] {
  let values: ReturnType<typeof parseArgs<T>>['values'];
  try {
    values = parseArgs(config).values;
  } catch (err) {
    process.stderr.write(`${command}: ${(err as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return values;
}

/** Exits with 2 after a clear message and the usage: for values parseArgs cannot check itself. */
export function usageError(command: string, usage: string, why: string): never {
  process.stderr.write(`${command}: ${why}\n\n${usage}\n`);
  process.exit(2);
}
