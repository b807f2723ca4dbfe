import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * Reads the V8 CPU profile a `node --cpu-prof` Relais wrote and ranks where its time went: by function
 * (self time) and by source file or package, so hot spots in src/ stand out from library time.
 */

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  name: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  idleShare: number;
  functions: HotSpot[];
  places: HotSpot[];
}

const ROOT = process.cwd();

const sourceMaps = new Map<string, SourceMap | null>();

/** dist/x.js line → src/x.ts line through the compiler's source map, when there is one. */
function original(path: string, line: number): { path: string; line: number } {
  let map = sourceMaps.get(path);
  if (map === undefined) {
    map = null;
    try {
      if (existsSync(`${path}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')));
    } catch {
      // no usable map: report the compiled file
    }
    sourceMaps.set(path, map);
  }
  const entry = map?.findEntry(line, 0) as { originalSource?: string; originalLine?: number } | undefined;
  if (!entry?.originalSource) return { path, line };
  const source = entry.originalSource.startsWith('file://')
    ? new URL(entry.originalSource).pathname
    : resolve(dirname(path), entry.originalSource);
  return { path: source, line: entry.originalLine ?? line };
}

/** Where a frame's code lives: a package name, a file of ours, node's internals, or V8 itself. */
function place(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const path = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith('node:')) return 'node internals';
  return path.startsWith('/') ? relative(ROOT, path) : path;
}

export function summariseProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const totalUs = profile.endTime - profile.startTime;
  const fn = new Map<string, number>();
  const pl = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    let where = place(url, functionName);
    let line = lineNumber;
    if (url.startsWith('file://') && !where.includes('node_modules') && where.endsWith('.js')) {
      const o = original(new URL(url).pathname, lineNumber);
      where = relative(ROOT, o.path);
      line = o.line;
    }
    const key = `${functionName || '(anonymous)'}  ${where}${url ? `:${line + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    pl.set(where, (pl.get(where) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const rank = (m: Map<string, number>): HotSpot[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, share: us / busyUs }));
  return {
    file,
    totalMs: totalUs / 1000,
    idleShare: idleUs / totalUs,
    functions: rank(fn),
    places: rank(pl),
  };
}

export function profilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
}

export function formatProfile(s: ProfileSummary): string {
  const line = (h: HotSpot) =>
    `  ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(7)} ms  ${h.name}`;
  return [
    `profile ${s.file}: ${(s.totalMs / 1000).toFixed(1)} s, idle ${(s.idleShare * 100).toFixed(0)}%`,
    'self time by function (share of busy time):',
    ...s.functions.map(line),
    'self time by package / file:',
    ...s.places.map(line),
  ].join('\n');
}
