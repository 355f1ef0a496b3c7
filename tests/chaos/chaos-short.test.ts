import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { seedFrom } from '../../scripts/lib/seeded-random.ts';

// `npm run chaos -- --short`: 40 users for 20 s on its own Redis and Postgres, two gateways and two billing workers
// SIGKILLed and restarted, Redis killed twice (AOF replay), Postgres crash-restarted once; then every invariant.
// CHAOS_SEED=… replays a run.
const ROOT = path.resolve(import.meta.dirname, '../..');
const seed = seedFrom('CHAOS_SEED');

test(`the short chaos run keeps every invariant (seed ${seed})`, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/chaos/chaos.ts', '--short', '--seed', String(seed)], {
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
  assert.is(code, 0, output.slice(-6000));
  const figure = (name: string) => Number(new RegExp(`${name}=(\\d+)`).exec(summary)?.[1] ?? NaN);
  assert.ok(figure('kills') > 0, summary);
  assert.ok(figure('restarts') >= 3, summary);
  assert.is(figure('freezes'), 1, summary);
  assert.ok(figure('absorbed') > 0, summary);
  assert.ok(figure('sessions') > 0 && figure('messages') > 0, summary);
  assert.is(figure('lost'), 0);
  assert.is(figure('created'), 0);
  const checks = output.split('\n').filter((line) => line.startsWith('✓') || line.startsWith('✗'));
  assert.ok(checks.length >= 8, output.slice(-3000));
  assert.equal(checks.filter((line) => line.startsWith('✗')), []);
});

test.run();
