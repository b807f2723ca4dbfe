import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './helpers/server-process.js';

/** Runs a built benchmark command; none of these arguments gets as far as starting a benchmark. */
function bench(script: string, args: string[]) {
  const r = spawnSync(process.execPath, [`${ROOT}dist/bench/${script}.js`, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = [
  ['run', 'bench'],
  ['e2e', 'bench:e2e'],
  ['suite', 'bench:suite'],
  ['campaign-bench', 'campaign-bench'],
  ['soak', 'soak'],
  ['status-update-bench', 'status-update-bench'],
  ['history-bench', 'history-bench'],
] as const;

describe('benchmark commands and their arguments', () => {
  beforeAll(ensureBuilt);

  it.each(COMMANDS)('%s: an unknown option names it, prints the usage and exits 2', (script, name) => {
    const r = bench(script, ['--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr.startsWith(`${name}: Unknown option '--bogus'`)).toBe(true);
    expect(r.stderr).toContain('usage:');
    expect(r.stderr).not.toContain('    at '); // no stack trace
  });

  it.each(COMMANDS)('%s: --help prints the usage and exits 0', (script) => {
    const r = bench(script, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: /);
  });

  it.each([
    ['suite', ['--only', 'campains'], 'bench:suite: unknown benchmark in --only: campains'],
    ['suite', ['--db', 'mysql'], 'bench:suite: unknown database "mysql"'],
    ['suite', ['--soak-minutes', '0'], 'bench:suite: --soak-minutes expects a positive number of minutes'],
    ['soak', ['--rate', 'fast'], 'soak: --rate expects a positive number'],
    ['campaign-bench', ['--urgent', 'sms'], 'campaign-bench: --urgent is otp or verification'],
    ['status-update-bench', ['--runs', '1.5'], 'status-update-bench: --runs expects a positive whole number'],
    [
      'history-bench',
      ['--messages', '10'],
      'history-bench: --messages expects a whole number, 1,000 or more',
    ],
    ['e2e', ['--runs'], "bench:e2e: Option '--runs <value>' argument missing"],
    ['run', ['--db', 'oracle'], 'bench: unknown database "oracle"'],
  ] as const)('%s %j: says what is wrong and exits 2', (script, args, message) => {
    const r = bench(script, [...args]);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stderr).toContain('usage:');
  });
});
