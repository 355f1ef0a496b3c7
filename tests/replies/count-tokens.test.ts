import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countPromptTokens, countTokens } from '#gateway/replies/count-tokens.ts';

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

test.run();
