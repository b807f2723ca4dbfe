#!/usr/bin/env -S node --max-semi-space-size=32
import { nodeVersionProblem } from './shared/node-version.js';

// Before anything that loads the dependencies (see node-version.ts).
const problem = nodeVersionProblem(process.version);
if (problem) {
  process.stderr.write(`relais: ${problem}\n`);
  process.exit(1);
}
const { runCli } = await import('./cli/cli.js');
process.exitCode = await runCli(process.argv.slice(2));
