import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { APIConnectionTimeoutError, AuthenticationError, InternalServerError } from 'openai';
import { countPromptTokens, countTokens } from '#gateway/replies/count-tokens.ts';
import { OpenAiReplyGenerator, type OpenAiReplyGeneratorOptions } from '#gateway/replies/openai-replies.ts';
import type { ReplyRequest } from '#gateway/replies/reply-generator.ts';
import { buildChatMessages } from '#gateway/replies/system-prompt.ts';
import { startFakeOpenAi, type FakeOpenAi, type FakeOpenAiOptions } from '../support/fake-openai.ts';

const request: ReplyRequest = {
  clone: {
    name: 'Marta Quill',
    bio: 'Tax adviser for freelancers.',
    description: null,
    expertiseAreas: ['freelance taxes', 'VAT'],
    personalityTraits: { tone: 'dry' },
  },
  history: [
    { senderType: 'user', content: 'Hi Marta' },
    { senderType: 'ai', content: 'Hello! What can I help with?' },
    { senderType: 'user', content: 'Can I deduct my laptop?' },
  ],
};

async function withFake(
  options: FakeOpenAiOptions,
  run: (fake: FakeOpenAi, generator: OpenAiReplyGenerator) => Promise<void>,
  generatorOptions: Partial<OpenAiReplyGeneratorOptions> = {},
): Promise<void> {
  const fake = await startFakeOpenAi(options);
  try {
    const generator = new OpenAiReplyGenerator({
      apiKey: 'sk-test-123',
      baseURL: fake.baseUrl,
      model: 'gpt-test',
      ...generatorOptions,
    });
    await run(fake, generator);
  } finally {
    await fake.close();
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.unreachable('expected the promise to reject');
  return undefined;
}

test('streams the reply as deltas that join to the content, with tokens from the reported usage', async () => {
  const text = 'Yes, if you use it for work, you can deduct it.';
  await withFake({ reply: () => text, usage: { prompt_tokens: 120, completion_tokens: 13 } }, async (_fake, generator) => {
    const deltas: string[] = [];
    const reply = await generator.generate(request, (delta) => deltas.push(delta));
    assert.ok(deltas.length > 5, `expected several deltas, got ${deltas.length}`);
    assert.is(deltas.join(''), text);
    assert.is(reply.content, text);
    assert.is(reply.tokensUsed, 133);
  });
});

test('sends the model, a streaming request asking for usage, the clone prompt, the history and the key', async () => {
  await withFake({}, async (fake, generator) => {
    await generator.generate(request, () => {});
    assert.is(fake.requests.length, 1);
    const sent = fake.requests[0]!;
    assert.is(sent.authorization, 'Bearer sk-test-123');
    assert.is(sent.body.model, 'gpt-test');
    assert.is(sent.body.stream, true);
    assert.equal(sent.body.stream_options, { include_usage: true });
    const [system, ...rest] = sent.body.messages;
    assert.is(system?.role, 'system');
    assert.match(String(system?.content), 'Marta Quill');
    assert.match(String(system?.content), 'freelance taxes, VAT');
    assert.equal(rest, [
      { role: 'user', content: 'Hi Marta' },
      { role: 'assistant', content: 'Hello! What can I help with?' },
      { role: 'user', content: 'Can I deduct my laptop?' },
    ]);
  });
});

test('without usage from the server, tokens are counted locally over prompt and reply', async () => {
  const text = 'Only the business share of it.';
  await withFake({ reply: () => text, usage: null }, async (_fake, generator) => {
    const reply = await generator.generate(request, () => {});
    assert.is(reply.content, text);
    const expected = countPromptTokens(buildChatMessages(request)) + countTokens(text);
    assert.ok(expected > countTokens(text));
    assert.is(reply.tokensUsed, expected);
  });
});

test('a server error is retried and the retry answers', async () => {
  await withFake({ failNext: 1, retryAfterMs: 5, reply: () => 'Recovered fine.' }, async (fake, generator) => {
    const reply = await generator.generate(request, () => {});
    assert.is(reply.content, 'Recovered fine.');
    assert.equal(
      fake.requests.map((r) => r.outcome),
      ['failed', 'completed'],
    );
  });
});

test('after two retries a persisting server error surfaces as a thrown error', async () => {
  await withFake({ failNext: 5, retryAfterMs: 5 }, async (fake, generator) => {
    const deltas: string[] = [];
    const error = await rejection(generator.generate(request, (delta) => deltas.push(delta)));
    assert.instance(error, InternalServerError);
    assert.is((error as InternalServerError).status, 500);
    assert.is(fake.requests.length, 3);
    assert.equal(deltas, []);
  });
});

test('a stream that ends before the model finished is an error, not a short reply', async () => {
  await withFake({ reply: () => 'one two three four five', endStreamAfter: 2 }, async (_fake, generator) => {
    const deltas: string[] = [];
    const error = await rejection(generator.generate(request, (delta) => deltas.push(delta)));
    assert.instance(error, Error);
    assert.match((error as Error).message, 'before it finished');
    assert.equal(deltas, ['one ', 'two ']);
  });
});

test('a rejected key fails at once without retrying', async () => {
  await withFake({ apiKey: 'sk-other' }, async (fake, generator) => {
    assert.instance(await rejection(generator.generate(request, () => {})), AuthenticationError);
    assert.is(fake.requests.length, 1);
  });
});

test('aborting the signal mid-stream rejects, stops the deltas and hangs up on the server', async () => {
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
  await withFake({ reply: () => words, chunkDelayMs: 15 }, async (fake, generator) => {
    const controller = new AbortController();
    const deltas: string[] = [];
    const error = await rejection(
      generator.generate({ ...request, signal: controller.signal }, (delta) => {
        deltas.push(delta);
        if (deltas.length === 2) controller.abort();
      }),
    );
    assert.is(error, controller.signal.reason);
    assert.is(deltas.length, 2);
    assert.is(await fake.settled(0), 'client_closed');
  });
});

test('no delta follows an abort even when the rest of the reply has already arrived', async () => {
  const words = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
  await withFake({ reply: () => words }, async (_fake, generator) => {
    const controller = new AbortController();
    const deltas: string[] = [];
    const error = await rejection(
      generator.generate({ ...request, signal: controller.signal }, (delta) => {
        deltas.push(delta);
        if (deltas.length === 1) controller.abort();
      }),
    );
    assert.is(error, controller.signal.reason);
    assert.equal(deltas, ['w0 ']);
  });
});

test('an already aborted signal rejects without a reply', async () => {
  await withFake({}, async (_fake, generator) => {
    const deltas: string[] = [];
    const signal = AbortSignal.abort();
    assert.is(await rejection(generator.generate({ ...request, signal }, (delta) => deltas.push(delta))), signal.reason);
    assert.equal(deltas, []);
  });
});

test('a server that does not start answering within the timeout fails with a timeout', async () => {
  await withFake(
    { headersDelayMs: 500 },
    async (fake, generator) => {
      assert.instance(await rejection(generator.generate(request, () => {})), APIConnectionTimeoutError);
      assert.is(fake.requests.length, 1);
    },
    { timeoutMs: 100, maxRetries: 0 },
  );
});

test('a stream that stalls mid-reply fails with a timeout instead of hanging', async () => {
  await withFake(
    { reply: () => 'slow slow slow', chunkDelayMs: 1000 },
    async (fake, generator) => {
      const started = Date.now();
      const deltas: string[] = [];
      const error = await rejection(generator.generate(request, (delta) => deltas.push(delta)));
      assert.instance(error, APIConnectionTimeoutError);
      assert.ok(Date.now() - started < 900, 'gave up before the first chunk came');
      assert.equal(deltas, []);
      assert.is(fake.requests.length, 1, 'a stalled stream is not retried');
      assert.is(await fake.settled(0), 'client_closed');
    },
    { timeoutMs: 100 },
  );
});

test.run();
