import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Semaphore } from '#shared/concurrency/semaphore.ts';

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('at most `limit` hold a turn; the rest wait and get theirs in arrival order', async () => {
  const slots = new Semaphore(2);
  const order: number[] = [];
  const waits = [1, 2, 3, 4, 5].map((n) => slots.acquire().then((granted) => granted && order.push(n)));
  await turn();
  assert.equal(order, [1, 2]);
  assert.equal({ active: slots.active, queued: slots.queued }, { active: 2, queued: 3 });
  slots.release();
  await turn();
  assert.equal(order, [1, 2, 3], 'a released slot goes to the longest waiting');
  slots.release();
  slots.release();
  await Promise.all(waits);
  assert.equal(order, [1, 2, 3, 4, 5], 'every wait is granted in the end: none is dropped');
  assert.equal({ active: slots.active, queued: slots.queued }, { active: 2, queued: 0 });
});

test('a wait aborted before its turn gives up its place and holds nothing', async () => {
  const slots = new Semaphore(1);
  assert.ok(await slots.acquire());
  const controller = new AbortController();
  const aborted = slots.acquire(controller.signal);
  const next = slots.acquire();
  assert.is(slots.queued, 2);
  controller.abort();
  assert.is(await aborted, false);
  assert.is(slots.queued, 1);
  slots.release();
  assert.is(await next, true, 'the slot went past the aborted wait');
  assert.is(slots.active, 1);
  assert.is(await slots.acquire(AbortSignal.abort()), false, 'already aborted: no slot taken');
  assert.is(slots.active, 1);
});

test('a bound below one is refused', () => {
  assert.throws(() => new Semaphore(0), /whole number/);
  assert.throws(() => new Semaphore(1.5), /whole number/);
});

test('run: tasks take turns, in order, and a failing task gives its turn back', async () => {
  const semaphore = new Semaphore(1);
  const order: string[] = [];
  const task = (name: string, fail = false) => async () => {
    order.push(`${name} starts`);
    await turn();
    order.push(`${name} ends`);
    if (fail) throw new Error(name);
    return name;
  };
  const results = await Promise.allSettled([semaphore.run(task('a')), semaphore.run(task('b', true)), semaphore.run(task('c'))]);
  assert.equal(order, ['a starts', 'a ends', 'b starts', 'b ends', 'c starts', 'c ends']);
  assert.equal(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.is(semaphore.active, 0);
});

test.run();
