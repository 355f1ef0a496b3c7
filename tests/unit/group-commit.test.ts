/**
 * GroupCommit: what arrives while a flush runs goes in the next one; a lone urgent submission is flushed in the same
 * I/O turn's wake; submissions nobody waits for linger up to `lingerMs` for company (counted from their submission,
 * also when they arrive during a flush), and an urgent one takes the lingering ones along at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCommit } from '#shared/concurrency/group-commit.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const recorder = () => {
  const flushes: string[][] = [];
  const commit = (lingerMs = 0) =>
    new GroupCommit<string, string>(
      async (items) => {
        flushes.push([...items]);
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
  let flushing = false;
  const flushes: string[][] = [];
  const group = new GroupCommit<string, string>(
    async (items) => {
      flushing = true;
      flushes.push([...items]);
      await sleep(150);
      flushing = false;
      return items.map((item) => `done ${item}`);
    },
    { lingerMs: 400 },
  );
  const until = async (condition: () => boolean) => {
    while (!condition()) await sleep(2);
  };
  const first = group.submit('a', false);
  await until(() => flushing); // 'a' lingered 400 ms; its flush now runs for 150 ms
  const second = group.submit('b', false); // during the flush: due 400 ms from now
  await until(() => !flushing);
  await sleep(50);
  assert.equal(flushes, [['a']], "'b' waits for its linger, not for the flush's end");
  const third = group.submit('c', false);
  assert.equal(await Promise.all([first, second, third]), ['done a', 'done b', 'done c']);
  assert.equal(flushes, [['a'], ['b', 'c']]);
});

test.run();
