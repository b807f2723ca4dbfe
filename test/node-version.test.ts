import { describe, expect, it } from 'vitest';
import { nodeVersionProblem } from '../src/shared/node-version.js';

describe('the Node.js version check at start', () => {
  it('accepts the versions that load ES modules with require() unflagged', () => {
    for (const v of ['v20.19.0', 'v20.20.2', 'v22.12.0', 'v22.20.1', 'v23.0.0', 'v24.11.1']) {
      expect(nodeVersionProblem(v), v).toBeNull();
    }
  });

  it('refuses the older ones with what to install', () => {
    for (const v of ['v18.20.4', 'v20.12.0', 'v20.18.0', 'v21.7.3', 'v22.11.0']) {
      expect(nodeVersionProblem(v), v).toBe(
        `Relais needs Node.js 20.19 or newer on 20.x, or 22.12 or newer (this is ${v})`,
      );
    }
  });

  it('passes on the Node.js running this test (the one CI and the README use)', () => {
    expect(nodeVersionProblem(process.version)).toBeNull();
  });
});
