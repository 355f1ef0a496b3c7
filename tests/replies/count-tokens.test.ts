import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { countPromptTokens, countTokens } from '#gateway/replies/count-tokens.ts';
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';

// the oracle: js-tiktoken's own encoder (what the counter must agree with, count for count)
const encoder = new Tiktoken(o200kBase);
const rawTokens = (text: string) => encoder.encode(text, [], []).length;

test('text is counted in o200k_base tokens', () => {
  assert.is(countTokens(''), 0);
  assert.is(countTokens('hello world'), 2);
  assert.ok(countTokens('The quick brown fox jumps over the lazy dog.') >= 9);
});

test('text spelling a special token is counted as ordinary text instead of throwing', () => {
  assert.ok(countTokens('before <|endoftext|> after') > 3);
});

test('a chat prompt costs its roles and contents plus 3 per message and 3 for the reply', () => {
  const messages = [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'hello world' },
  ];
  const expected = 3 + (3 + countTokens('system') + countTokens('You are helpful.')) + (3 + countTokens('user') + 2);
  assert.is(countPromptTokens(messages), expected);
  assert.is(countPromptTokens([]), 3);
});

test('remembered counts are the counts: a prompt costs the same the first and every later time', () => {
  const text = `A long history message ${'with many words '.repeat(50)}and an ending.`;
  const messages = [
    { role: 'system', content: 'You are a patient teacher.' },
    { role: 'user', content: text },
    { role: 'assistant', content: 'before <|endoftext|> after' },
  ];
  const first = countPromptTokens(messages);
  const fresh = 3 + messages.reduce((sum, m) => sum + 3 + countTokens(m.role) + countTokens(m.content), 0);
  assert.is(first, fresh);
  for (let i = 0; i < 3; i++) assert.is(countPromptTokens(structuredClone(messages)), first);
  assert.is(countTokens(`${text}`), countTokens(text.slice(0)), 'equal text, equal count');
});

test('piece by piece and remembered, every count equals the encoder\'s over varied text (seeded)', () => {
  const alphabet = [
    'a', 'b', 'Z', 'é', 'ß', 'Ж', '中', '文', 'ا', '😀', '👍🏽', '1', '23', '4567', ' ', '  ', '   ', '\t', '\n', '\r\n', '\n\n',
    '.', ',', '!', '?', '...', '--', '/', '\\', '"', "'", "'s", "'LL", "n't", '(', ')', '[', ']', '{', '}', '$', '%', '&',
    '<|endoftext|>', '<|im_start|>', 'hello', ' world', 'The', ' quick', 'brown', 'FOX', 'camelCase', 'snake_case',
    'https://example.com/a?b=c', '\u0301', '\u200b', 'x'.repeat(40),
  ];
  let seed = 20261126;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 600; i++) {
    let text = '';
    const parts = 1 + Math.floor(random() * 30);
    for (let j = 0; j < parts; j++) text += alphabet[Math.floor(random() * alphabet.length)];
    assert.is(countTokens(text), rawTokens(text), `seed case ${i}: ${JSON.stringify(text)}`);
    assert.is(countTokens(text), rawTokens(text), 'the same again, remembered');
  }
});

test('counts equal the encoder\'s over real prose, code and markup: the repository\'s own documents', () => {
  const root = new URL('../../', import.meta.url);
  for (const file of ['README.md', 'docs/architecture.md', 'docs/protocol.md', 'shared/src/live-state/lua/includes/live-state.lua', 'gateway/web/widget.css']) {
    const text = readFileSync(new URL(file, root), 'utf8');
    assert.is(countTokens(text), rawTokens(text), file);
    for (const paragraph of text.split(/\n\n/)) assert.is(countTokens(paragraph), rawTokens(paragraph), `${file}: ${paragraph.slice(0, 60)}`);
  }
  for (const long of ['x'.repeat(3000), '1234567890'.repeat(50), ' '.repeat(500), 'é'.repeat(700), '\ud83d'.repeat(5), 'a\ud800b']) {
    assert.is(countTokens(long), rawTokens(long), JSON.stringify(long.slice(0, 20)));
  }
});

test.run();
