import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled file of a worker thread's script `file`, beside the module at `callerUrl` (its
 * `import.meta.url`). Under vitest the callers are TypeScript sources with no compiled file beside
 * them; the build's copy under dist/ is used then (`npm test` builds first).
 */
export function workerScript(callerUrl: string, file: string): URL {
  const beside = new URL(`./${file}`, callerUrl);
  if (existsSync(fileURLToPath(beside))) return beside;
  const at = callerUrl.lastIndexOf('/src/');
  return new URL(`./${file}`, `${callerUrl.slice(0, at)}/dist/${callerUrl.slice(at + '/src/'.length)}`);
}
