import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coalesceByKey } from '#billing/coalesce-by-key.ts';

test('calls during a run share one more run that starts after it; other keys run on their own', async () => {
  const started: string[] = [];
  let release: (() => void) | undefined;
  const refresh = coalesceByKey(async (key: string) => {
    started.push(key);
    if (key === 'a' && started.length === 1) await new Promise<void>((resolve) => (release = resolve));
  });
  const first = refresh('a');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(started, ['a'], 'the first call runs at once');
  const during = [refresh('a'), refresh('a'), refresh('a')];
  const other = refresh('b');
  await other;
  assert.equal(started, ['a', 'b'], 'calls for a wait for the run in flight; b does not');
  release!();
  await Promise.all([first, ...during]);
  assert.equal(started, ['a', 'b', 'a'], 'one more run serves the three calls made during the first');
  await refresh('a');
  assert.equal(started, ['a', 'b', 'a', 'a'], 'a call after everything settled runs again');
});

test('a failed run fails its callers, and the next call runs again', async () => {
  let calls = 0;
  const refresh = coalesceByKey(async () => {
    calls += 1;
    if (calls === 1) throw new Error('unavailable');
  });
  await refresh('x').then(
    () => assert.unreachable('should fail'),
    (error: Error) => assert.is(error.message, 'unavailable'),
  );
  await refresh('x');
  assert.is(calls, 2);
});

test.run();
