/**
 * Summarises a V8 `.cpuprofile` (from `npm run bench -- --profile`, or any `node --cpu-prof`): where the busy
 * time went by package / project folder, the hottest functions by self time and by inclusive time.
 *
 *   tsx scripts/bench/profile-summary.ts <file.cpuprofile> [more files…] [--top 20] [--callers <function name>]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Samples that are not JavaScript work (V8 marks them with these pseudo-functions). */
const IDLE = new Set(['(idle)', '(program)']);

function where(node: ProfileNode): string {
  const { url } = node.callFrame;
  if (!url) return node.callFrame.functionName; // (garbage collector), (program), native
  const file = url.replace(/^file:\/\//, '');
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (modules) return modules[1]!;
  if (file.startsWith('node:')) return 'node internals';
  const relative = path.relative(path.resolve(import.meta.dirname, '../..'), file);
  return relative.startsWith('..') ? file : relative.split('/').slice(0, 3).join('/');
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(path.resolve(import.meta.dirname, '../..') + '/', '');
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

/** Where samples of functions named `name` come from: their first caller outside node internals, by share. */
export function callersOf(file: string, name: string, top: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const callers = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    if (byId.get(id)!.callFrame.functionName !== name) return;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    let at = parent.get(id);
    while (at !== undefined) {
      const { url } = byId.get(at)!.callFrame;
      if (url && !url.startsWith('node:')) break;
      at = parent.get(at);
    }
    const key = at === undefined ? '(no JavaScript caller)' : label(byId.get(at)!);
    callers.set(key, (callers.get(key) ?? 0) + dt);
  });
  const lines = [...callers.entries()]
    .sort(([, a], [, b]) => b - a)
    .slice(0, top)
    .map(([key, ms]) => `  ${((ms / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
  return [`${path.basename(file)}: ${(total / 1000).toFixed(1)} s in ${name}, first non-internal callers:`, ...lines].join('\n');
}

export function summarizeProfile(file: string, top: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const packages = new Map<string, number>();
  let busy = 0;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000; // µs → ms
    total += dt;
    const node = byId.get(id)!;
    if (IDLE.has(node.callFrame.functionName)) return;
    busy += dt;
    const key = label(node);
    self.set(key, (self.get(key) ?? 0) + dt);
    packages.set(where(node), (packages.get(where(node)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = label(byId.get(at)!);
      if (seen.has(k) || k === '(root)') continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });
  const pct = (ms: number) => `${((ms / busy) * 100).toFixed(1).padStart(5)} %`;
  const list = (map: Map<string, number>, n: number) =>
    [...map.entries()]
      .sort(([, a], [, b]) => b - a)
      .slice(0, n)
      .map(([key, ms]) => `  ${pct(ms)}  ${key}`)
      .join('\n');
  return [
    `${path.basename(file)}: ${(total / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy (${((busy / total) * 100).toFixed(0)} %)`,
    'busy time by package / folder (self):',
    list(packages, 15),
    `hottest functions, self time (of busy):`,
    list(self, top),
    `hottest functions, inclusive time (of busy):`,
    list(inclusive, top),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('profile-summary.ts')) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 20;
  const callersAt = args.indexOf('--callers');
  const callersName = callersAt >= 0 ? args.splice(callersAt, 2)[1] : undefined;
  if (args.length === 0) {
    console.error('usage: tsx scripts/bench/profile-summary.ts <file.cpuprofile>… [--top 20]');
    process.exit(2);
  }
  for (const file of args) console.log(`${callersName ? callersOf(file, callersName, top) : summarizeProfile(file, top)}\n`);
}
