/**
 * `npm test` on a machine that lacks something says so in one line per missing piece, and fails, before any test
 * runs: here Chromium (pointed elsewhere) and Redis (a port nothing listens on), for the browser tests.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../scripts/lib/free-port.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

test('each missing piece is one line saying how to get it, and the run fails without running a test', async () => {
  const port = await freePort();
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/run-tests.ts', 'browser/widget'], {
    cwd: ROOT,
    env: { ...process.env, CHROMIUM_PATH: '/nonexistent/chromium', TEST_REDIS_URL: `redis://127.0.0.1:${port}` },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(run.status, 1);
  const missing = run.stderr.split('\n').filter((line) => line.includes('missing:'));
  assert.is(missing.length, 2, run.stderr);
  assert.match(missing.join('\n'), /Chromium at \/nonexistent\/chromium .*apt-get install chromium/);
  assert.match(missing.join('\n'), new RegExp(`Redis answering at 127\\.0\\.0\\.1:${port} .*apt-get install redis-server`));
  assert.not.match(run.stderr, /\bat .*\.ts:\d+/, 'no stack trace');
  assert.match(run.stdout, /^0 passed, 0 failed$/m);
  assert.not.match(run.stdout, /widget\.test\.ts/, 'no test file ran');
});

test.run();
