import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../src/shared/node-flags.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const flags = NODE_FLAGS.join(' ');

/** Every way of starting Relais passes the same V8 flags (src/shared/node-flags.ts says why). */
describe('the V8 flags Relais starts with', () => {
  it('are in npm start and npm run relais', () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(scripts.start).toBe(`node ${flags} dist/main.js start`);
    expect(scripts.relais).toBe(`node ${flags} dist/main.js`);
  });

  it('are in the shebang of the relais command, and in the systemd unit and the container image', () => {
    expect(read('src/main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    expect(read('deploy/relais.service')).toContain(
      `ExecStart=/usr/bin/node ${flags} /opt/relais/dist/main.js start`,
    );
    const cmd = ['node', ...NODE_FLAGS, 'dist/main.js', 'start'].map((a) => `"${a}"`).join(', ');
    expect(read('deploy/Dockerfile')).toContain(`CMD [${cmd}]`);
  });

  it('start the built relais command run by itself (tsc does not make dist/main.js executable; the build does)', () => {
    const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    expect(execFileSync(main, ['--help'], { encoding: 'utf8' })).toMatch(/^usage: relais <command>/);
  });

  it('take effect: with them the young generation grows past Node.js 20’s 32 MiB', () => {
    const script = `
      const v8 = require('node:v8');
      let keep = [];
      for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 100000) keep = []; }
      const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      process.stdout.write(String(space.space_size));`;
    const newSpace = (args: readonly string[]) =>
      Number(execFileSync(process.execPath, [...args, '-e', script], { encoding: 'utf8' }));
    expect(newSpace([])).toBeLessThanOrEqual(32 * 1024 * 1024);
    expect(newSpace(NODE_FLAGS)).toBeGreaterThan(32 * 1024 * 1024);
  });
});
