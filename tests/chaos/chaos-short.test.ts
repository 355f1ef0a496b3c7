import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { seedFrom } from '../../scripts/lib/seeded-random.ts';

// `npm run chaos -- --short`: 40 users for 20 s on its own Redis and Postgres, two gateways and two billing workers
// SIGKILLed and restarted, Redis killed twice (AOF replay), Postgres crash-restarted once; then every invariant.
// And `--short --cluster`: the same on a Redis Cluster of 3 masters and 3 replicas, two masters failing over.
// CHAOS_SEED=… replays a run.
const ROOT = path.resolve(import.meta.dirname, '../..');
const seed = seedFrom('CHAOS_SEED');

/** Runs the chaos script with `args`; its exit code, output, and a figure of its final line by name. */
async function chaos(args: string[]): Promise<{ code: number | null; output: string; summary: string; figure(name: string): number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/chaos/chaos.ts', '--short', '--seed', String(seed), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  // the run has its own watchdog; this one only keeps `npm test` from waiting forever if that one failed too
  const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const summary = output.split('\n').find((line) => line.startsWith('chaos: PASS') || line.startsWith('chaos: FAIL')) ?? '';
  return { code, output, summary, figure: (name) => Number(new RegExp(`${name}=(\\d+)`).exec(summary)?.[1] ?? NaN) };
}

function assertInvariantsHeld(run: Awaited<ReturnType<typeof chaos>>): void {
  assert.is(run.code, 0, run.output.slice(-6000));
  assert.is(run.figure('freezes'), 1, run.summary);
  assert.ok(run.figure('absorbed') > 0, run.summary);
  assert.ok(run.figure('sessions') > 0 && run.figure('messages') > 0, run.summary);
  assert.is(run.figure('lost'), 0);
  assert.is(run.figure('created'), 0);
  const checks = run.output.split('\n').filter((line) => line.startsWith('✓') || line.startsWith('✗'));
  assert.ok(checks.length >= 8, run.output.slice(-3000));
  assert.equal(checks.filter((line) => line.startsWith('✗')), []);
}

test(`the short chaos run keeps every invariant (seed ${seed})`, async () => {
  const run = await chaos([]);
  assertInvariantsHeld(run);
  assert.ok(run.figure('kills') > 0, run.summary);
  assert.ok(run.figure('restarts') >= 3, run.summary);
});

test(`the short chaos run on a Redis Cluster keeps every invariant through two master failovers (seed ${seed})`, async () => {
  const run = await chaos(['--cluster']);
  assertInvariantsHeld(run);
  assert.is(run.figure('failovers'), 2, run.summary);
  assert.ok(run.figure('restarts') >= 1, run.summary);
});

test.run();
