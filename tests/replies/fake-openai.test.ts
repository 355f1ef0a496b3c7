import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI from 'openai';
import { startFakeOpenAi } from '../support/fake-openai.ts';

test('the fake answers a non-streaming request in the format the SDK parses', async () => {
  const fake = await startFakeOpenAi({ reply: (body) => `echo ${body.messages.length}`, usage: { prompt_tokens: 7, completion_tokens: 2 } });
  try {
    const client = new OpenAI({ apiKey: 'sk-plain', baseURL: fake.baseUrl, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'one' }, { role: 'user', content: 'two' }],
    });
    assert.is(completion.object, 'chat.completion');
    assert.is(completion.choices[0]?.message.content, 'echo 2');
    assert.is(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.usage, { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 });
    assert.is(fake.requests[0]?.authorization, 'Bearer sk-plain');
    assert.is(fake.requests[0]?.outcome, 'completed');
  } finally {
    await fake.close();
  }
});

test('the fake streams chunks then a usage chunk with no choices, and only when usage is asked for', async () => {
  const fake = await startFakeOpenAi({ reply: () => 'a b c' });
  try {
    const client = new OpenAI({ apiKey: 'sk-plain', baseURL: fake.baseUrl, maxRetries: 0 });
    const read = async (includeUsage: boolean) => {
      const stream = await client.chat.completions.create({
        model: 'gpt-test',
        messages: [{ role: 'user', content: 'go' }],
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      return chunks;
    };
    const withUsage = await read(true);
    assert.equal(
      withUsage.map((c) => c.choices[0]?.delta.content ?? null),
      ['', 'a ', 'b ', 'c', null, null],
    );
    assert.is(withUsage[4]?.choices[0]?.finish_reason, 'stop');
    assert.equal(withUsage[5]?.choices, []);
    assert.equal(withUsage[5]?.usage, { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
    const withoutUsage = await read(false);
    assert.is(withoutUsage.length, 5);
    assert.ok(withoutUsage.every((c) => c.usage == null));
  } finally {
    await fake.close();
  }
});

test('the fake answers 500 to as many requests as it is told to fail', async () => {
  const fake = await startFakeOpenAi();
  try {
    const client = new OpenAI({ apiKey: 'sk-plain', baseURL: fake.baseUrl, maxRetries: 0 });
    fake.failNext(1);
    const body = { model: 'm', messages: [{ role: 'user' as const, content: 'x' }] };
    let status: number | undefined;
    await client.chat.completions.create(body).catch((error: { status?: number }) => {
      status = error.status;
    });
    assert.is(status, 500);
    assert.is((await client.chat.completions.create(body)).choices[0]?.message.content, 'Fake reply to: x');
    assert.equal(fake.requests.map((r) => r.outcome), ['failed', 'completed']);
  } finally {
    await fake.close();
  }
});

test.run();
