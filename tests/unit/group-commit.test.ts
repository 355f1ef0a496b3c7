/**
 * GroupCommit: what arrives while a flush runs goes in the next one; a lone urgent submission is flushed in the same
 * I/O turn's wake; submissions nobody waits for linger up to `lingerMs` for company (counted from their submission,
 * also when they arrive during a flush), and an urgent one takes the lingering ones along at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCommit } from '#shared/concurrency/group-commit.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const recorder = (flushMs = 0) => {
  const flushes: string[][] = [];
  const commit = (lingerMs = 0) =>
    new GroupCommit<string, string>(
      async (items) => {
        flushes.push([...items]);
        if (flushMs > 0) await sleep(flushMs);
        return items.map((item) => `done ${item}`);
      },
      { lingerMs },
    );
  return { flushes, commit };
};

test('urgent submissions of one turn share a flush; each gets its own result', async () => {
  const { flushes, commit } = recorder();
  const group = commit();
  const results = await Promise.all([group.submit('a'), group.submit('b')]);
  assert.equal(results, ['done a', 'done b']);
  assert.equal(flushes, [['a', 'b']]);
});

test('submissions nobody waits for linger for company, then go together', async () => {
  const { flushes, commit } = recorder();
  const group = commit(80);
  const first = group.submit('a', false);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(flushes, [], 'still lingering');
  const second = group.submit('b', false);
  assert.equal(await Promise.all([first, second]), ['done a', 'done b']);
  assert.equal(flushes, [['a', 'b']]);
});

test('an urgent submission does not linger, and takes the lingering ones along', async () => {
  const { flushes, commit } = recorder();
  const group = commit(10_000);
  const lingering = group.submit('a', false);
  const startedAt = performance.now();
  assert.is(await group.submit('b'), 'done b');
  assert.is(await lingering, 'done a');
  assert.ok(performance.now() - startedAt < 5_000, 'not held for the linger');
  assert.equal(flushes, [['a', 'b']]);
});

test('a submission that arrives during a flush still lingers for company, from its own submission', async () => {
  const { flushes, commit } = recorder(60);
  const group = commit(200);
  const first = group.submit('a', false);
  await sleep(230); // 'a' lingered 200 ms; its flush runs until ~260 ms
  assert.equal(flushes, [['a']]);
  const second = group.submit('b', false); // during the flush: due ~430 ms
  await sleep(80); // the flush is over (~310 ms): 'b' has not gone back to back with it
  assert.equal(flushes, [['a']], "'b' waits for its linger, not for the flush's end");
  const third = group.submit('c', false);
  assert.equal(await Promise.all([first, second, third]), ['done a', 'done b', 'done c']);
  assert.equal(flushes, [['a'], ['b', 'c']]);
});

test.run();
