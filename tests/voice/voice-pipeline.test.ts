import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import type { CloneConversation } from '#agent/clone-conversation.ts';
import { DeepgramSpeechToText } from '#agent/deepgram-speech-to-text.ts';
import { DeepgramTextToSpeech } from '#agent/deepgram-text-to-speech.ts';
import { SentenceSplitter } from '#agent/sentence-splitter.ts';
import { VoicePipeline, VoiceTurnAborted } from '#agent/voice-pipeline.ts';
import { startFakeDeepgram, type FakeDeepgram, type FakeDeepgramOptions } from '../support/fake-deepgram.ts';
import { MemoryTransport } from '../support/memory-transport.ts';
import { concatSamples, silence, tone, writeWav } from '../support/wav.ts';

const MIC_RATE = 16_000;
const TTS_RATE = 24_000;

/** One `reply()` call as the scripted clone saw it. */
interface ReplyCall {
  clientMessageId: string;
  content: string;
  signal: AbortSignal;
  /** Words yielded before the reply ended. */
  words: number;
  outcome: 'streaming' | 'completed' | 'aborted' | 'refused';
}

/** A clone that answers from a script, streaming the answer word by word; an Error in the script is a refusal. */
class ScriptedConversation implements CloneConversation {
  readonly calls: ReplyCall[] = [];
  /** How often the pipeline told of voice activity. */
  activity = 0;

  voiceActivity(): void {
    this.activity += 1;
  }

  constructor(
    private readonly answers: Array<string | Error>,
    private readonly wordDelayMs = 20,
  ) {}

  async *reply(utterance: { clientMessageId: string; content: string }, signal: AbortSignal): AsyncGenerator<string> {
    const call: ReplyCall = { ...utterance, signal, words: 0, outcome: 'streaming' };
    this.calls.push(call);
    const answer = this.answers[this.calls.length - 1] ?? 'I have nothing more to say.';
    if (answer instanceof Error) {
      call.outcome = 'refused';
      throw answer;
    }
    for (const word of answer.match(/\S+\s*/g) ?? []) {
      await new Promise((resolve) => setTimeout(resolve, this.wordDelayMs));
      if (signal.aborted) {
        call.outcome = 'aborted';
        throw signal.reason;
      }
      call.words += 1;
      yield word;
    }
    call.outcome = 'completed';
  }
}

interface Harness {
  fake: FakeDeepgram;
  transport: MemoryTransport;
  conversation: ScriptedConversation;
  pipeline: VoicePipeline;
  logs: Array<Record<string, unknown>>;
}

async function withPipeline(
  setup: { transcripts: string[]; answers: Array<string | Error>; wav: Buffer; speed?: number; fake?: FakeDeepgramOptions },
  run: (h: Harness) => Promise<void>,
): Promise<void> {
  const fake = await startFakeDeepgram({ transcripts: setup.transcripts, speakMsPerChar: 10, ...setup.fake });
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const transport = new MemoryTransport({ wav: setup.wav, speed: setup.speed ?? 1 });
  const conversation = new ScriptedConversation(setup.answers);
  const pipeline = new VoicePipeline({
    transport,
    speechToText: new DeepgramSpeechToText({ apiKey: 'dg-test', baseUrl: fake.url, model: 'nova-3', logger }),
    textToSpeech: new DeepgramTextToSpeech({ apiKey: 'dg-test', baseUrl: fake.url, model: 'aura-2-thalia-en' }),
    conversation,
    logger,
    messageIdPrefix: 'voice-test',
  });
  try {
    await pipeline.start();
    await run({ fake, transport, conversation, pipeline, logs });
  } finally {
    await pipeline.close();
    await fake.close();
  }
}

async function until(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The sentences the pipeline should speak for a reply, as the splitter cuts them. */
function sentencesOf(reply: string): string[] {
  const splitter = new SentenceSplitter();
  const sentences = splitter.push(reply);
  const rest = splitter.flush();
  return rest ? [...sentences, rest] : sentences;
}

function samplesOf(fake: FakeDeepgram, sentences: string[]): number {
  return sentences.reduce((sum, sentence) => sum + fake.samplesFor(sentence, TTS_RATE), 0);
}

/** A user saying something: a tone burst of `ms`, then `pauseMs` of silence. */
function speech(ms: number, pauseMs: number): Int16Array {
  return concatSamples(tone(MIC_RATE, ms), silence(MIC_RATE, pauseMs));
}

test('spoken audio becomes utterances; each reply is spoken sentence by sentence and played in full', async () => {
  const transcripts = ['What is a Roth IRA?', 'Can I open one?'];
  const answers = [
    'A Roth IRA is a retirement account. You pay the tax now, not later.',
    'Yes, if your income is under the limit. Most banks offer one.',
  ];
  // Two bursts far enough apart that the first answer is over before the user speaks again.
  const wav = writeWav({ sampleRate: MIC_RATE, samples: concatSamples(silence(MIC_RATE, 200), speech(500, 3000), speech(500, 400)) });
  await withPipeline({ transcripts, answers, wav, speed: 2 }, async ({ fake, transport, conversation }) => {
    await until(() => transport.playbacks.length === 2 && transport.playbacks.every((p) => p.ended), 'two answers played');

    assert.equal(
      conversation.calls.map(({ clientMessageId, content, outcome }) => ({ clientMessageId, content, outcome })),
      [
        { clientMessageId: 'voice-test-1', content: 'What is a Roth IRA?', outcome: 'completed' },
        { clientMessageId: 'voice-test-2', content: 'Can I open one?', outcome: 'completed' },
      ],
    );
    assert.not.ok(conversation.calls.some((call) => call.signal.aborted), 'no reply was cut');
    // the user speaking and the clone answering are voice activity the gateway hears of (the idle rule)
    assert.ok(conversation.activity >= conversation.calls.length * 2, `activity told ${conversation.activity} times`);

    const first = sentencesOf(answers[0]!);
    const second = sentencesOf(answers[1]!);
    assert.equal(first, ['A Roth IRA is a retirement account.', 'You pay the tax now, not later.']);
    assert.equal(fake.spokenTexts, [...first, ...second]);
    assert.ok(fake.speaks.every((s) => s.outcome === 'completed'));

    assert.equal(
      transport.playbacks.map((p) => ({ samples: p.samples, stopped: p.stopped })),
      [
        { samples: samplesOf(fake, first), stopped: false },
        { samples: samplesOf(fake, second), stopped: false },
      ],
    );
    assert.is(transport.playbacks[0]!.samples, Math.round(66 * 10 * 24), 'the first answer is 660 ms of audio');
  });
});

test('the user speaking over the clone aborts its reply, stops playback, and the new utterance is answered', async () => {
  const transcripts = ['Tell me everything about pensions.', 'Stop, what about ISAs?'];
  const long = [
    'A pension is a long-term savings plan for retirement.',
    'Your employer usually adds money to it as well.',
    'The government adds tax relief on what you pay in.',
    'You can usually take a quarter of it tax free later.',
    'The rest is taxed as income when you draw it down.',
    'There are several kinds, and each has its own rules.',
  ].join(' ');
  const answers = [long, 'An ISA is a tax-free savings account.'];
  const wav = writeWav({ sampleRate: MIC_RATE, samples: concatSamples(silence(MIC_RATE, 200), speech(500, 400)) });
  await withPipeline({ transcripts, answers, wav }, async ({ fake, transport, conversation }) => {
    await until(() => (transport.playbacks[0]?.ms ?? 0) >= 600, 'the clone to be speaking');
    transport.feed(writeWav({ sampleRate: MIC_RATE, samples: speech(500, 400) }));
    await until(() => transport.playbacks.length === 2 && transport.playbacks[1]!.ended, 'the second answer played');

    const [first, second] = conversation.calls;
    assert.ok(first && second);
    assert.ok(first.signal.aborted, 'the first reply was aborted');
    assert.instance(first.signal.reason, VoiceTurnAborted);
    assert.is((first.signal.reason as VoiceTurnAborted).reason, 'barge-in');
    assert.is(first.outcome, 'aborted', 'the reply was still streaming when the user spoke');
    assert.ok(first.words < long.split(' ').length);
    assert.equal(
      { clientMessageId: second.clientMessageId, content: second.content, outcome: second.outcome, aborted: second.signal.aborted },
      { clientMessageId: 'voice-test-2', content: 'Stop, what about ISAs?', outcome: 'completed', aborted: false },
    );

    const full = samplesOf(fake, sentencesOf(long));
    const cut = transport.playbacks[0]!;
    assert.ok(cut.stopped, 'the first playback was stopped');
    assert.ok(cut.samples < full / 2, `played ${cut.samples} of ${full} samples of the long answer`);
    // Only what was heard, plus what had been requested ahead, was ever synthesized; none of it was left running.
    const spokenOfLong = fake.spokenTexts.filter((text) => long.includes(text));
    assert.ok(spokenOfLong.length < sentencesOf(long).length, `synthesized ${spokenOfLong.length} sentences of the long answer`);
    assert.ok(fake.speaks.every((s) => s.outcome !== 'pending'));

    const answer = sentencesOf(answers[1]!);
    assert.equal(fake.spokenTexts.slice(-answer.length), answer);
    assert.equal({ samples: transport.playbacks[1]!.samples, stopped: transport.playbacks[1]!.stopped }, {
      samples: samplesOf(fake, answer),
      stopped: false,
    });
  });
});

test('a refused reply is logged and the pipeline keeps listening and answering', async () => {
  const transcripts = ['Hello?', 'Are you there now?'];
  const answers = [new Error('session is paused'), 'Welcome back. Ask me anything.'];
  const wav = writeWav({ sampleRate: MIC_RATE, samples: concatSamples(silence(MIC_RATE, 200), speech(400, 1200), speech(400, 400)) });
  await withPipeline({ transcripts, answers, wav, speed: 2 }, async ({ fake, transport, conversation, logs }) => {
    await until(() => transport.playbacks.length === 2 && transport.playbacks[1]!.ended, 'the second answer played');

    assert.equal(
      conversation.calls.map(({ clientMessageId, content, outcome }) => ({ clientMessageId, content, outcome })),
      [
        { clientMessageId: 'voice-test-1', content: 'Hello?', outcome: 'refused' },
        { clientMessageId: 'voice-test-2', content: 'Are you there now?', outcome: 'completed' },
      ],
    );
    const refusal = logs.find((entry) => entry['msg'] === 'voice turn: the clone did not reply');
    assert.ok(refusal, 'the refusal was logged');
    assert.is(refusal['level'], 50);
    assert.is(refusal['clientMessageId'], 'voice-test-1');
    assert.is((refusal['err'] as { message: string }).message, 'session is paused');

    assert.is(transport.playbacks[0]!.samples, 0, 'nothing was said for the refused turn');
    assert.equal(fake.spokenTexts, ['Welcome back.', 'Ask me anything.']);
    assert.is(transport.playbacks[1]!.samples, samplesOf(fake, ['Welcome back.', 'Ask me anything.']));
  });
});

test('close() aborts the reply in progress, closes the Deepgram stream and the transport, and resolves `closed`', async () => {
  const answers = ['This is going to be a rather long answer, so settle in and listen closely to all of it.'];
  const wav = writeWav({ sampleRate: MIC_RATE, samples: concatSamples(silence(MIC_RATE, 200), speech(400, 400)) });
  await withPipeline({ transcripts: ['Explain it all.'], answers, wav }, async ({ fake, transport, conversation, pipeline }) => {
    await until(() => conversation.calls.length === 1 && conversation.calls[0]!.words > 0, 'the reply to start');
    await pipeline.close();
    await pipeline.closed;
    const call = conversation.calls[0]!;
    assert.ok(call.signal.aborted);
    assert.is((call.signal.reason as VoiceTurnAborted).reason, 'closed');
    assert.ok(transport.closed);
    assert.ok(fake.streams[0]!.closeStreamReceived, 'CloseStream was sent');
    assert.ok(transport.playbacks[0]!.ended);
  });
});

test.run();
