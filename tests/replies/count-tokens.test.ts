import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { countPromptTokens, countTokens } from '#gateway/replies/count-tokens.ts';
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';

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

test('a remembered count is the encoder\'s count: every text of the repository\'s documents, twice', () => {
  const root = new URL('../../', import.meta.url);
  const encoder = new Tiktoken(o200kBase);
  for (const file of ['README.md', 'docs/architecture.md', 'docs/protocol.md', 'gateway/lua/includes/live-state.lua']) {
    const text = readFileSync(new URL(file, root), 'utf8');
    for (const part of [text, ...text.split(/\n\n/)]) {
      const expected = encoder.encode(part, [], []).length;
      assert.is(countTokens(part), expected, `${file}: ${part.slice(0, 60)}`);
      assert.is(countTokens(part), expected, 'the same again, remembered');
    }
  }
});

test.run();
