import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cachedReading } from '#shared/observability/cached-reading.ts';

/** A reading that counts its reads and answers the read's number, on a clock the test moves. */
function counted() {
  let reads = 0;
  let now = 1_000;
  let fail = false;
  return {
    read: async () => {
      reads += 1;
      if (fail) throw new Error('unreachable');
      return reads;
    },
    reads: () => reads,
    clock: () => now,
    advance: (ms: number) => void (now += ms),
    failing: (value: boolean) => void (fail = value),
  };
}

test('a reading younger than maxAgeMs is reused; an older one is read again', async () => {
  const source = counted();
  const reading = cachedReading(source.read, 5000, source.clock);
  assert.is(await reading(), 1);
  source.advance(4999);
  assert.is(await reading(), 1);
  assert.is(source.reads(), 1);
  source.advance(1);
  assert.is(await reading(), 2);
  assert.is(source.reads(), 2);
});

test('scrapes during a read share it', async () => {
  const source = counted();
  const reading = cachedReading(source.read, 5000, source.clock);
  assert.equal(await Promise.all([reading(), reading(), reading()]), [1, 1, 1]);
  assert.is(source.reads(), 1);
});

test('a failed read is not kept: the next scrape reads again', async () => {
  const source = counted();
  const reading = cachedReading(source.read, 5000, source.clock);
  source.failing(true);
  await reading().then(
    () => assert.unreachable('the failure should reach the scrape'),
    (error: Error) => assert.is(error.message, 'unreachable'),
  );
  source.failing(false);
  assert.is(await reading(), 2);
});

test('maxAgeMs 0 reads on every call', async () => {
  const source = counted();
  const reading = cachedReading(source.read, 0, source.clock);
  await reading();
  await reading();
  assert.is(source.reads(), 2);
});

test.run();
