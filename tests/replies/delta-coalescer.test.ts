import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeltaCoalescer } from '#gateway/replies/delta-coalescer.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('deltas of one interval go out as one, in order, joining to exactly what was pushed', async () => {
  const sent: string[] = [];
  const deltas = new DeltaCoalescer((delta) => sent.push(delta), 30);
  for (const word of ['one ', 'two ', 'three ']) deltas.push(word);
  assert.equal(sent, [], 'nothing before the interval');
  await sleep(60);
  assert.equal(sent, ['one two three ']);
  deltas.push('four ');
  deltas.push('');
  await sleep(60);
  deltas.push('five');
  deltas.flush();
  assert.equal(sent, ['one two three ', 'four ', 'five']);
  assert.is(sent.join(''), 'one two three four five');
});

test('flush sends what is pending at once and nothing when nothing is', async () => {
  const sent: string[] = [];
  const deltas = new DeltaCoalescer((delta) => sent.push(delta), 10_000);
  deltas.flush();
  assert.equal(sent, []);
  deltas.push('a');
  deltas.push('b');
  deltas.flush();
  assert.equal(sent, ['ab'], 'no wait for the interval');
  await sleep(20);
  assert.equal(sent, ['ab'], 'the interval timer was cleared');
});

test.run();
