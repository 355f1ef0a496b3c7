import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SentenceSplitter } from '#agent/sentence-splitter.ts';

/** Feeds the text in the given pieces; returns each push's sentences and the flushed rest. */
function split(pieces: string[], splitter = new SentenceSplitter()): { pushed: string[][]; rest: string | undefined } {
  const pushed = pieces.map((piece) => splitter.push(piece));
  return { pushed, rest: splitter.flush() };
}

test('a sentence is released as soon as the whitespace after its end arrives', () => {
  const { pushed, rest } = split(['Yes', ', you can.', ' It', ' counts as', ' a work expense! Keep', ' the receipt'], undefined);
  assert.equal(pushed, [[], [], ['Yes, you can.'], [], ['It counts as a work expense!'], []]);
  assert.is(rest, 'Keep the receipt');
});

test('a full stop inside a number does not end the sentence', () => {
  const { pushed, rest } = split(['The rate is 3', '.5 percent. Then', ' more.']);
  assert.equal(pushed.flat(), ['The rate is 3.5 percent.']);
  assert.is(rest, 'Then more.');
});

test('question marks, ellipses, closing quotes and line breaks end sentences', () => {
  const { pushed, rest } = split(['Why? Well… she said "no." Then\nnothing\n\n']);
  assert.equal(pushed.flat(), ['Why?', 'Well…', 'she said "no."', 'Then', 'nothing']);
  assert.is(rest, undefined);
});

test('a long run without an end is cut at a comma, else a space', () => {
  const splitter = new SentenceSplitter({ maxChars: 40 });
  const sentences = splitter.push('one two three four five six, seven eight nine ten eleven twelve thirteen');
  assert.equal(sentences, ['one two three four five six,', 'seven eight nine ten eleven twelve']);
  assert.is(splitter.flush(), 'thirteen');
  assert.equal(new SentenceSplitter({ maxChars: 20 }).push('abcdefghij klmnopqrstuvwxyz'), ['abcdefghij']);
});

test.run();
