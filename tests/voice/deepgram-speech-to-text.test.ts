import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { DeepgramSpeechToText, type DeepgramSpeechToTextOptions } from '#agent/deepgram-speech-to-text.ts';
import type { SpeechToTextListener } from '#agent/speech-to-text.ts';
import { startFakeDeepgram, type FakeDeepgram, type FakeDeepgramOptions } from '../support/fake-deepgram.ts';
import { concatSamples, silence, tone } from '../support/wav.ts';

const RATE = 16_000;
const logger = pino({ level: 'silent' });

type Event = 'speechStarted' | `utterance:${string}` | `failed:${string}`;

function recorder(): { events: Event[]; listener: SpeechToTextListener } {
  const events: Event[] = [];
  return {
    events,
    listener: {
      speechStarted: () => events.push('speechStarted'),
      utterance: (text) => events.push(`utterance:${text}`),
      failed: (error) => events.push(`failed:${error.message}`),
    },
  };
}

async function withStt(
  fakeOptions: FakeDeepgramOptions,
  run: (fake: FakeDeepgram, stt: DeepgramSpeechToText) => Promise<void>,
  sttOptions: Partial<DeepgramSpeechToTextOptions> = {},
): Promise<void> {
  const fake = await startFakeDeepgram(fakeOptions);
  const stt = new DeepgramSpeechToText({ apiKey: 'dg-test', baseUrl: fake.url, model: 'nova-3', logger, ...sttOptions });
  try {
    await run(fake, stt);
  } finally {
    await stt.close();
    await fake.close();
  }
}

/** Sends the samples in 20 ms frames, as fast as the socket takes them (the fake runs on audio time). */
function sendAll(stt: DeepgramSpeechToText, samples: Int16Array): void {
  for (let offset = 0; offset < samples.length; offset += 320) {
    stt.send({ samples: samples.subarray(offset, offset + 320), sampleRate: RATE, channels: 1 });
  }
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('opens /v1/listen with the key, linear16 at 16 kHz mono, the model, interim results and endpointing', async () => {
  await withStt({ apiKey: 'dg-test' }, async (fake, stt) => {
    await stt.start(recorder().listener);
    await until(() => fake.streams.length === 1, 'the stream');
    const stream = fake.streams[0]!;
    assert.is(stream.authorization, 'Token dg-test');
    const query = Object.fromEntries(stream.query);
    assert.equal(
      {
        model: query['model'],
        encoding: query['encoding'],
        sample_rate: query['sample_rate'],
        channels: query['channels'],
        interim_results: query['interim_results'],
        endpointing: query['endpointing'],
        utterance_end_ms: query['utterance_end_ms'],
      },
      {
        model: 'nova-3',
        encoding: 'linear16',
        sample_rate: '16000',
        channels: '1',
        interim_results: 'true',
        endpointing: '300',
        utterance_end_ms: '1000',
      },
    );
  });
});

test('each burst of speech is reported as speech started, then one utterance with its transcript', async () => {
  const transcripts = ['What is a Roth IRA?', 'And a traditional one?'];
  await withStt({ transcripts }, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    const audio = concatSamples(silence(RATE, 200), tone(RATE, 500), silence(RATE, 600), tone(RATE, 400), silence(RATE, 600));
    sendAll(stt, audio);
    await until(() => events.length >= 4, 'two utterances');
    assert.equal(events, [
      'speechStarted',
      'utterance:What is a Roth IRA?',
      'speechStarted',
      'utterance:And a traditional one?',
    ]);
    await until(() => fake.streams[0]!.bytes === audio.length * 2, 'all audio at the fake');
  });
});

test('with endpointing off, final segments make one utterance when UtteranceEnd arrives', async () => {
  await withStt({ transcripts: ['I would like to ask', 'about pensions.'] }, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    // Two bursts 400 ms apart: two final segments, no speech_final; UtteranceEnd after 1000 ms of silence.
    sendAll(stt, concatSamples(tone(RATE, 300), silence(RATE, 400), tone(RATE, 300), silence(RATE, 500)));
    await until(() => fake.streams[0]?.utterances.length === 2, 'two final segments');
    // One utterance in progress: the second segment does not start another.
    assert.equal(events, ['speechStarted'], 'no utterance before UtteranceEnd');
    sendAll(stt, silence(RATE, 800));
    await until(() => events.some((e) => e.startsWith('utterance:')), 'the utterance');
    assert.equal(events, ['speechStarted', 'utterance:I would like to ask about pensions.']);
    assert.ok(fake.streams[0]!.sent.some((m) => m['type'] === 'UtteranceEnd'));
    assert.not.ok(fake.streams[0]!.sent.some((m) => m['speech_final'] === true));
  }, { endpointingMs: false });
});

test('close() sends CloseStream: words still being spoken are flushed as an utterance, then the stream closes', async () => {
  await withStt({ transcripts: ['Wait, one more thing'] }, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    sendAll(stt, tone(RATE, 400));
    await until(() => events.includes('speechStarted'), 'speech started');
    await stt.close();
    const stream = fake.streams[0]!;
    assert.ok(stream.closeStreamReceived, 'CloseStream sent');
    await until(() => stream.closed !== undefined, 'the fake to see the close');
    assert.equal(stream.closed, { code: 1000, reason: '' });
    assert.equal(stream.sent.at(-1)?.['type'], 'Metadata');
    assert.equal(events, ['speechStarted', 'utterance:Wait, one more thing']);
  });
});

test('KeepAlive is sent while no audio goes out, so the stream outlives Deepgram’s idle timeout', async () => {
  await withStt({ idleTimeoutMs: 500 }, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const stream = fake.streams[0]!;
    assert.ok(stream.keepAlives >= 3, `expected at least 3 KeepAlives, got ${stream.keepAlives}`);
    assert.is(stream.closed, undefined);
    assert.equal(events, []);
  }, { keepAliveMs: 200 });
});

test('without KeepAlive the fake closes an idle stream (1011), which is reported as failed', async () => {
  await withStt({ idleTimeoutMs: 300 }, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    await until(() => events.length > 0, 'the failure');
    assert.is(fake.streams[0]!.closed?.code, 1011);
    assert.match(events[0]!, /^failed:the Deepgram stream closed \(code 1011/);
  }, { keepAliveMs: 60_000, reconnectAttempts: 0 });
});

test('a stream the network drops (1011) is reopened: speech after the drop still becomes an utterance, nothing failed', async () => {
  const transcripts = ['Before the drop.', 'After the drop.'];
  await withStt({ transcripts }, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    sendAll(stt, concatSamples(silence(RATE, 200), tone(RATE, 400), silence(RATE, 600)));
    await until(() => events.includes('utterance:Before the drop.'), 'the first utterance');
    fake.dropStreams(1011, 'network failure');
    await until(() => fake.streams.length === 2 && fake.streams[1]!.closed === undefined, 'a second stream, open');
    // the client sees the new socket open a moment after the server does: frames before that are not sent
    await until(() => {
      sendAll(stt, silence(RATE, 20));
      return fake.streams[1]!.bytes > 0;
    }, 'audio flowing on the reopened stream');
    sendAll(stt, concatSamples(tone(RATE, 400), silence(RATE, 600)));
    await until(() => events.some((e) => e.startsWith('utterance:') && e !== 'utterance:Before the drop.'), 'an utterance on the reopened stream');
    assert.equal(events.filter((e) => e.startsWith('failed:')), [], 'a reopened stream is not a failure');
    assert.is(fake.streams[0]!.closed?.code, 1011);
  }, { reconnectAttempts: 2 });
});

test('drops beyond reconnectAttempts are reported as failed, once', async () => {
  await withStt({}, async (fake, stt) => {
    const { events, listener } = recorder();
    await stt.start(listener);
    for (let drop = 1; drop <= 2; drop++) {
      fake.dropStreams(1011, `drop ${drop}`);
      if (drop < 2) await until(() => fake.streams.length === drop + 1 && fake.streams[drop]!.closed === undefined, `stream ${drop + 1} open`);
    }
    await until(() => events.length > 0, 'the failure');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.match(events[0]!, /^failed:the Deepgram stream closed \(code 1011: drop 2/);
    assert.is(fake.streams.length, 2, 'no third stream');
  }, { reconnectAttempts: 1 });
});

test('a refused key makes start() reject', async () => {
  await withStt({ apiKey: 'the-right-key' }, async (fake, stt) => {
    const error = await stt.start(recorder().listener).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(error, Error);
    assert.match((error as Error).message, /could not open the Deepgram stream.*401/);
    assert.is(fake.streams.length, 0);
  });
});

test('frames that are not mono at the configured rate are refused', async () => {
  await withStt({}, async (_fake, stt) => {
    await stt.start(recorder().listener);
    assert.throws(() => stt.send({ samples: new Int16Array(480), sampleRate: 24_000, channels: 1 }), RangeError);
  });
});

test.run();
