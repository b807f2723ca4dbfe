import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { CpuProfile } from './profile.js';

/**
 * Inclusive time of a V8 CPU profile (node --cpu-prof): for every sample, each module (a file of ours,
 * mapped from dist/ to src/, or a package) and each function of ours on the stack is charged once. Self
 * time by function comes from profile.ts; this shows which of our modules the time is spent under.
 */

export interface Inclusive {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface InclusiveSummary {
  busyMs: number;
  totalMs: number;
  modules: Inclusive[];
  functions: Inclusive[];
}

const ROOT = process.cwd();

function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const path = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith('node:')) return 'node internals';
  const rel = path.startsWith('/') ? relative(ROOT, path) : path;
  return rel.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts');
}

export function inclusiveProfile(file: string, top = 30): InclusiveSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const modules = new Map<string, number>();
  const functions = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id);
    if (!leaf) continue;
    const name = leaf.callFrame.functionName;
    if (name === '(idle)') continue;
    if (name === '(program)') {
      busyUs += us;
      continue;
    }
    busyUs += us;
    const seenModules = new Set<string>();
    const seenFunctions = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      if (!node) break;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(root)') break;
      const mod = moduleOf(url, functionName);
      seenModules.add(mod);
      if (mod.startsWith('src/'))
        seenFunctions.add(`${functionName || '(anonymous)'}  ${mod}:${lineNumber + 1}`);
    }
    for (const m of seenModules) modules.set(m, (modules.get(m) ?? 0) + us);
    for (const f of seenFunctions) functions.set(f, (functions.get(f) ?? 0) + us);
  }
  const rank = (m: Map<string, number>): Inclusive[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: us / busyUs }));
  return {
    busyMs: busyUs / 1000,
    totalMs: (profile.endTime - profile.startTime) / 1000,
    modules: rank(modules),
    functions: rank(functions),
  };
}

export function formatInclusive(s: InclusiveSummary): string {
  const line = (h: Inclusive) =>
    `  ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.ms.toFixed(0).padStart(7)} ms  ${h.name}`;
  return [
    `busy ${(s.busyMs / 1000).toFixed(1)} s of ${(s.totalMs / 1000).toFixed(1)} s`,
    'inclusive time by module (share of busy time; a module is charged once per sample):',
    ...s.modules.map(line),
    'inclusive time by function of src/ (lines are of the compiled dist/ file):',
    ...s.functions.map(line),
  ].join('\n');
}
