/**
 * The house's walls, checked over the real import graph (esbuild resolves every import of every source file, the
 * `#shared/*`-style subpath imports included): the three processes meet only through shared/ (Redis, the queue,
 * Postgres); shared/ imports no process; no process imports scripts or tests.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { build, type Metafile } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROCESSES = ['gateway', 'billing', 'agent'] as const;
type Room = (typeof PROCESSES)[number] | 'shared' | 'scripts' | 'tests' | 'outside';

/** Which room may use which: each process itself and shared; shared only itself. */
const ALLOWED: Record<Exclude<Room, 'scripts' | 'tests' | 'outside'>, Room[]> = {
  gateway: ['gateway', 'shared'],
  billing: ['billing', 'shared'],
  agent: ['agent', 'shared'],
  shared: ['shared'],
};

function roomOf(file: string): Room {
  const top = file.split('/')[0];
  if (top === 'shared' || top === 'scripts' || top === 'tests') return top;
  if ((PROCESSES as readonly string[]).includes(top ?? '')) return top as Room;
  return 'outside';
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(dir, file).split(path.sep).join('/'));
}

/** Every import of every file under `dirs`, resolved to a repository path (packages left out). */
async function importGraph(dirs: string[]): Promise<Metafile['inputs']> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: dirs.flatMap(sourceFiles),
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outdir: 'out',
    logLevel: 'silent',
  });
  return result.metafile.inputs;
}

/** The imports that cross a wall, as "from → to". */
function crossings(inputs: Metafile['inputs']): string[] {
  const found: string[] = [];
  for (const [file, input] of Object.entries(inputs)) {
    const from = roomOf(file);
    if (!(from in ALLOWED)) continue;
    for (const { path: to, external } of input.imports) {
      if (external) continue; // a package or a node: builtin
      if (!ALLOWED[from as keyof typeof ALLOWED].includes(roomOf(to))) found.push(`${file} → ${to}`);
    }
  }
  return found.sort();
}

test('gateway, billing and the agent import only themselves and shared; shared imports no process', async () => {
  const inputs = await importGraph(['shared/src', 'gateway/src', 'billing/src', 'agent/src']);
  assert.ok(Object.keys(inputs).length > 100, 'the graph holds the sources');
  assert.equal(crossings(inputs), []);
});

test('the check sees a wall crossed: a test file importing across every wall is reported', () => {
  const inputs: Metafile['inputs'] = {
    'billing/src/a.ts': { bytes: 0, imports: [{ path: 'gateway/src/b.ts', kind: 'import-statement', original: '#gateway/b.ts' }] },
    'shared/src/c.ts': { bytes: 0, imports: [{ path: 'billing/src/a.ts', kind: 'import-statement', original: '#billing/a.ts' }] },
    'agent/src/d.ts': { bytes: 0, imports: [{ path: 'gateway/src/b.ts', kind: 'import-statement', original: '#gateway/b.ts' }] },
    'gateway/src/b.ts': { bytes: 0, imports: [{ path: 'tests/support/x.ts', kind: 'import-statement', original: '../../tests/support/x.ts' }] },
    'tests/e.ts': { bytes: 0, imports: [{ path: 'gateway/src/b.ts', kind: 'import-statement', original: '#gateway/b.ts' }] },
  };
  assert.equal(crossings(inputs), [
    'agent/src/d.ts → gateway/src/b.ts',
    'billing/src/a.ts → gateway/src/b.ts',
    'gateway/src/b.ts → tests/support/x.ts',
    'shared/src/c.ts → billing/src/a.ts',
  ]);
});

test.run();
