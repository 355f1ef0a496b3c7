import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '#shared/config/config.ts';
import { OfflineReplyGenerator } from '#gateway/replies/offline-replies.ts';
import { OpenAiReplyGenerator } from '#gateway/replies/openai-replies.ts';
import { createReplyGenerator, type ReplyRequest } from '#gateway/replies/reply-generator.ts';
import { startFakeOpenAi } from '../support/fake-openai.ts';

const request: ReplyRequest = {
  clone: { name: 'Ines', bio: null, description: null, expertiseAreas: ['chess'], personalityTraits: {} },
  history: [{ senderType: 'user', content: 'Best opening?' }],
};

test('with an API key the replies come from the configured OpenAI endpoint and model', async () => {
  const fake = await startFakeOpenAi({ reply: () => 'The Italian.' });
  try {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-live-abc', OPENAI_BASE_URL: fake.baseUrl, OPENAI_MODEL: 'gpt-x' });
    const generator = createReplyGenerator(config);
    assert.instance(generator, OpenAiReplyGenerator);
    const reply = await generator.generate(request, () => {});
    assert.is(reply.content, 'The Italian.');
    assert.is(fake.requests.length, 1);
    assert.is(fake.requests[0]!.authorization, 'Bearer sk-live-abc');
    assert.is(fake.requests[0]!.body.model, 'gpt-x');
  } finally {
    await fake.close();
  }
});

test('without an API key the offline responder answers and nothing is sent', async () => {
  const fake = await startFakeOpenAi();
  try {
    // An empty key counts as unset, as the config treats empty variables.
    const config = loadConfig({ OPENAI_API_KEY: '', OPENAI_BASE_URL: fake.baseUrl });
    const generator = createReplyGenerator(config);
    assert.instance(generator, OfflineReplyGenerator);
    const reply = await generator.generate(request, () => {});
    assert.ok(reply.content.startsWith('Ines: I hear you asking about "Best opening?".'), reply.content);
    assert.is(fake.requests.length, 0);
  } finally {
    await fake.close();
  }
});

test.run();
