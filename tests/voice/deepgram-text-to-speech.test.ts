import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeepgramError } from '@deepgram/sdk';
import type { AudioFrame } from '#agent/media-transport.ts';
import { DeepgramTextToSpeech, type DeepgramTextToSpeechOptions } from '#agent/deepgram-text-to-speech.ts';
import { startFakeDeepgram, type FakeDeepgram, type FakeDeepgramOptions } from '../support/fake-deepgram.ts';

async function withTts(
  fakeOptions: FakeDeepgramOptions,
  run: (fake: FakeDeepgram, tts: DeepgramTextToSpeech) => Promise<void>,
  ttsOptions: Partial<DeepgramTextToSpeechOptions> = {},
): Promise<void> {
  const fake = await startFakeDeepgram(fakeOptions);
  try {
    await run(fake, new DeepgramTextToSpeech({ apiKey: 'dg-test', baseUrl: fake.url, model: 'aura-2-thalia-en', ...ttsOptions }));
  } finally {
    await fake.close();
  }
}

async function collect(frames: AsyncIterable<AudioFrame>): Promise<AudioFrame[]> {
  const out: AudioFrame[] = [];
  for await (const frame of frames) out.push(frame);
  return out;
}

test('asks /v1/speak for raw linear16 at 24 kHz with the voice and key, and yields the audio as 20 ms frames', async () => {
  const text = 'A Roth IRA is funded with money that was already taxed.';
  await withTts({ apiKey: 'dg-test', speakMsPerChar: 15 }, async (fake, tts) => {
    const frames = await collect(tts.synthesize(text, new AbortController().signal));
    assert.is(fake.speaks.length, 1);
    const request = fake.speaks[0]!;
    assert.is(request.authorization, 'Token dg-test');
    assert.match(String(request.contentType), /^application\/json/);
    assert.is(request.text, text);
    assert.equal(Object.fromEntries(request.query), {
      model: 'aura-2-thalia-en',
      encoding: 'linear16',
      container: 'none',
      sample_rate: '24000',
    });
    const expected = fake.samplesFor(text, 24_000);
    assert.is(expected, Math.round(text.length * 15 * 24));
    assert.is(frames.reduce((sum, f) => sum + f.samples.length, 0), expected);
    assert.ok(frames.every((f) => f.sampleRate === 24_000 && f.channels === 1));
    assert.ok(frames.slice(0, -1).every((f) => f.samples.length === 480), 'every frame but the last is 20 ms');
    // The fake's tone, not silence or a WAV header read as samples.
    assert.ok(Math.max(...frames[1]!.samples) > 5000);
    assert.is(request.outcome, 'completed');
  });
});

test('aborting the signal cancels the request mid-stream and ends the iteration with the reason', async () => {
  const text = 'This answer is long enough to take a while to stream. '.repeat(6);
  await withTts({ speakChunkBytes: 960, speakChunkDelayMs: 20 }, async (fake, tts) => {
    const controller = new AbortController();
    const reason = new Error('barge-in');
    let frames = 0;
    const error = await (async () => {
      for await (const _frame of tts.synthesize(text, controller.signal)) {
        frames += 1;
        if (frames === 3) controller.abort(reason);
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.is(error, reason);
    assert.is(frames, 3);
    const deadline = Date.now() + 2000;
    while (fake.speaks[0]!.outcome === 'pending' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.is(fake.speaks[0]!.outcome, 'client_closed');
    assert.ok(fake.speaks[0]!.audioBytes < fake.speaks[0]!.totalAudioBytes / 2);
  });
});

test('a server error surfaces as a DeepgramError once the retries are spent', async () => {
  await withTts({ failNextSpeaks: 5 }, async (fake, tts) => {
    const error = await collect(tts.synthesize('Hello.', new AbortController().signal)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(error, DeepgramError);
    assert.is((error as DeepgramError).statusCode, 500);
    assert.is(fake.speaks.length, 1);
  }, { maxRetries: 0 });
});

test('a text longer than Deepgram accepts is refused before any request', async () => {
  await withTts({}, async (fake, tts) => {
    const error = await collect(tts.synthesize('x'.repeat(2001), new AbortController().signal)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(error, RangeError);
    assert.is(fake.speaks.length, 0);
  });
});

test.run();
