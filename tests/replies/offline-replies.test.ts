import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countPromptTokens, countTokens } from '#gateway/replies/count-tokens.ts';
import { OfflineReplyGenerator } from '#gateway/replies/offline-replies.ts';
import type { ReplyRequest } from '#gateway/replies/reply-generator.ts';
import { buildChatMessages } from '#gateway/replies/system-prompt.ts';

const request: ReplyRequest = {
  clone: {
    name: 'Chef Lena',
    bio: null,
    description: 'Home cooking without fuss.',
    expertiseAreas: ['baking', 'fermentation', 'knife skills'],
    personalityTraits: { tone: 'cheerful' },
  },
  history: [
    { senderType: 'user', content: 'Hello' },
    { senderType: 'ai', content: 'Hi! Ask away.' },
    { senderType: 'user', content: 'Why does my\nsourdough not rise?' },
  ],
};

async function collect(generator: OfflineReplyGenerator, input: ReplyRequest) {
  const deltas: string[] = [];
  const reply = await generator.generate(input, (delta) => deltas.push(delta));
  return { reply, deltas };
}

test('the reply quotes the last user message and names the clone and its expertise', async () => {
  const { reply } = await collect(new OfflineReplyGenerator(), request);
  assert.ok(reply.content.startsWith('Chef Lena: I hear you asking about "Why does my sourdough not rise?".'), reply.content);
  assert.match(reply.content, 'As an expert in baking, fermentation and knife skills,');
});

test('the reply streams as several word deltas that join to exactly the content', async () => {
  const { reply, deltas } = await collect(new OfflineReplyGenerator(), request);
  assert.ok(deltas.length > 10, `expected many deltas, got ${deltas.length}`);
  assert.is(deltas.join(''), reply.content);
  for (const delta of deltas) assert.match(delta, /^\S+\s*$/);
});

test('the same request always gives the same reply, deltas and tokens', async () => {
  const first = await collect(new OfflineReplyGenerator(), request);
  const second = await collect(new OfflineReplyGenerator(), structuredClone(request));
  assert.equal(second, first);
});

test('tokens are counted over the prompt and the reply like a model server would', async () => {
  const { reply } = await collect(new OfflineReplyGenerator(), request);
  assert.ok(reply.tokensUsed > 0);
  assert.is(reply.tokensUsed, countPromptTokens(buildChatMessages(request)) + countTokens(reply.content));
});

test('a different question or clone gives a different reply', async () => {
  const generator = new OfflineReplyGenerator();
  const base = (await collect(generator, request)).reply.content;
  const otherQuestion = { ...request, history: [{ senderType: 'user' as const, content: 'Best flour?' }] };
  const otherClone = { ...request, clone: { ...request.clone, name: 'Chef Omar', expertiseAreas: [] } };
  const byQuestion = (await collect(generator, otherQuestion)).reply.content;
  const byClone = (await collect(generator, otherClone)).reply.content;
  assert.match(byQuestion, '"Best flour?"');
  assert.is.not(byQuestion, base);
  assert.match(byClone, /^Chef Omar: .*As an expert in my field,/);
});

test('a long question is quoted only in part', async () => {
  const long = 'why '.repeat(100).trim();
  const { reply } = await collect(new OfflineReplyGenerator(), { ...request, history: [{ senderType: 'user', content: long }] });
  assert.not.match(reply.content, long);
  assert.match(reply.content, /"(why ){29}why…"/);
});

test('aborting mid-reply rejects and stops the deltas', async () => {
  const controller = new AbortController();
  const deltas: string[] = [];
  let failed: unknown;
  try {
    await new OfflineReplyGenerator().generate({ ...request, signal: controller.signal }, (delta) => {
      deltas.push(delta);
      if (deltas.length === 3) controller.abort();
    });
  } catch (error) {
    failed = error;
  }
  assert.is(failed, controller.signal.reason);
  assert.is(deltas.length, 3);
});

test.run();
