import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkText } from '#billing/ingest/chunk-text.ts';
import { countTokens } from '#shared/tokens/count-tokens.ts';
import { SAMPLE_TEXTS } from '../support/fixtures/knowledge-base.ts';

const paragraph = (n: number) =>
  Array.from({ length: 8 }, (_, i) => `Sentence ${i} of paragraph ${n} is about subject number ${n * 10 + i}.`).join(' ');
const longText = Array.from({ length: 40 }, (_, n) => paragraph(n)).join('\n\n');

test('chunks stay within the token budget, slice back out of the text, and cover every word', () => {
  const chunks = chunkText([{ text: longText }], { chunkTokens: 120, overlapTokens: 20 });
  assert.ok(chunks.length > 10, `${chunks.length} chunks`);
  for (const chunk of chunks) {
    assert.ok(chunk.metadata.tokens <= 120, `${chunk.metadata.tokens} tokens`);
    assert.is(chunk.metadata.tokens, countTokens(chunk.content));
    assert.is(longText.slice(chunk.metadata.startOffset, chunk.metadata.endOffset), chunk.content);
    assert.is(chunk.content, chunk.content.trim());
    assert.is(chunk.metadata.page, undefined);
  }
  assert.is(chunks[0]!.metadata.startOffset, 0);
  assert.is(chunks.at(-1)!.metadata.endOffset, longText.length);
  for (let i = 1; i < chunks.length; i++) {
    const previous = chunks[i - 1]!.metadata;
    const current = chunks[i]!.metadata;
    assert.ok(current.startOffset > previous.startOffset, 'moves on');
    assert.ok(current.startOffset <= previous.endOffset, 'no gap between chunks');
  }
});

test('each chunk starts with the last words of the one before, up to the overlap budget', () => {
  const chunks = chunkText([{ text: longText }], { chunkTokens: 120, overlapTokens: 30 });
  for (let i = 1; i < chunks.length; i++) {
    const previous = chunks[i - 1]!.metadata;
    const current = chunks[i]!.metadata;
    const shared = longText.slice(current.startOffset, previous.endOffset);
    assert.ok(shared.length > 0, `chunk ${i} overlaps`);
    assert.ok(countTokens(shared) <= 30 + 1, `overlap of ${countTokens(shared)} tokens`);
  }
  const none = chunkText([{ text: longText }], { chunkTokens: 120, overlapTokens: 0 });
  for (let i = 1; i < none.length; i++) assert.ok(none[i]!.metadata.startOffset >= none[i - 1]!.metadata.endOffset);
});

test('a chunk prefers to end at a paragraph end', () => {
  const chunks = chunkText([{ text: longText }], { chunkTokens: 200, overlapTokens: 0 });
  for (const chunk of chunks.slice(0, -1)) {
    assert.is(longText.slice(chunk.metadata.endOffset, chunk.metadata.endOffset + 2), '\n\n', JSON.stringify(chunk.content.slice(-30)));
  }
});

test('pages are chunked apart and their chunks carry the page number', () => {
  const chunks = chunkText(
    [
      { text: SAMPLE_TEXTS.bernoulli, page: 1 },
      { text: '   ', page: 2 },
      { text: SAMPLE_TEXTS.tides, page: 3 },
    ],
    { chunkTokens: 400, overlapTokens: 60 },
  );
  assert.equal(chunks.map((chunk) => chunk.metadata.page), [1, 3]);
  assert.is(chunks[0]!.content, SAMPLE_TEXTS.bernoulli);
  assert.equal(chunks[1]!.metadata, { page: 3, startOffset: 0, endOffset: SAMPLE_TEXTS.tides.length, tokens: countTokens(SAMPLE_TEXTS.tides) });
});

test('a word longer than a chunk is cut between characters, never inside a surrogate pair', () => {
  const blob = 'QUJD'.repeat(600);
  const emoji = '😀'.repeat(100);
  const text = `start ${blob} middle ${emoji} end`;
  const chunks = chunkText([{ text }], { chunkTokens: 50, overlapTokens: 5 });
  for (const chunk of chunks) {
    assert.ok(chunk.metadata.tokens <= 50);
    assert.is(text.slice(chunk.metadata.startOffset, chunk.metadata.endOffset), chunk.content);
    assert.not.match(chunk.content, /^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
  }
  const covered = chunks.map((chunk) => chunk.content).join('');
  assert.ok(covered.includes('start') && covered.includes('end'));
});

test('no text gives no chunks; bad options are refused', () => {
  assert.equal(chunkText([{ text: '' }, { text: ' \n\t ' }], { chunkTokens: 100, overlapTokens: 10 }), []);
  assert.throws(() => chunkText([{ text: 'x' }], { chunkTokens: 100, overlapTokens: 100 }), RangeError);
  assert.throws(() => chunkText([{ text: 'x' }], { chunkTokens: 0, overlapTokens: 0 }), RangeError);
});

test.run();
