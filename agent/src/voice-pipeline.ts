/**
 * `VoicePipeline`: one voice session of a clone. The user's audio goes from the room to speech-to-text; each
 * final utterance becomes a message to the clone; the reply is spoken sentence by sentence as it streams in.
 *
 * Turns run one at a time. When the user starts speaking while the clone is answering (barge-in), the turn is
 * aborted: the reply's signal fires (the gateway stops and bills what was produced), pending synthesis is
 * cancelled and playback stops. A failing turn is logged and the pipeline keeps listening.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { CloneConversation } from './clone-conversation.ts';
import type { AudioFrame, MediaTransport } from './media-transport.ts';
import { SentenceSplitter } from './sentence-splitter.ts';
import type { SpeechToText } from './speech-to-text.ts';
import type { TextToSpeech } from './text-to-speech.ts';

export interface VoicePipelineOptions {
  /** The room: the user's audio in, the clone's voice out. The pipeline owns it: `close()` closes it. */
  transport: MediaTransport;
  /** Transcribes the room's audio; must accept the transport's frames. Owned: `start()` opens it, `close()` closes it. */
  speechToText: SpeechToText;
  /** Speaks the clone's replies (its frames go to the transport as they are). */
  textToSpeech: TextToSpeech;
  /** Where utterances go and replies come from. */
  conversation: CloneConversation;
  logger: Logger;
  /**
   * The n-th utterance (from 1) is sent with clientMessageId `<prefix>-<n>`. Default `voice-<8 random hex digits>`:
   * a pipeline started again for the same session (an agent restart) then never repeats an earlier message's id,
   * which the gateway would take for a retry of it. At most 50 characters.
   */
  messageIdPrefix?: string;
  /** Sentences whose speech is requested while an earlier one is still playing; default 2. */
  synthesisLookahead?: number;
}

interface Turn {
  clientMessageId: string;
  content: string;
  controller: AbortController;
}

export class VoicePipeline {
  readonly #options: VoicePipelineOptions;
  readonly #log: Logger;
  readonly #prefix: string;
  readonly #lookahead: number;
  /** Final utterances not yet answered: joined into one message when the next turn starts. */
  #pending: string[] = [];
  #utterances = 0;
  #turn: Turn | undefined;
  #working: Promise<void> | undefined;
  #pumping: Promise<void> | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #closedPromise: Promise<void>;
  #resolveClosed!: () => void;

  constructor(options: VoicePipelineOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#prefix = options.messageIdPrefix ?? `voice-${randomBytes(4).toString('hex')}`;
    if (this.#prefix.length > 50) throw new RangeError('messageIdPrefix is longer than 50 characters');
    this.#lookahead = Math.max(0, options.synthesisLookahead ?? 2);
    this.#closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Resolves once the pipeline has ended: `close()`, the transport's audio ending, or speech-to-text failing. */
  get closed(): Promise<void> {
    return this.#closedPromise;
  }

  /** Opens speech-to-text and starts listening. Rejects if speech-to-text cannot be opened (then call `close()`). */
  async start(): Promise<void> {
    if (this.#started) throw new Error('VoicePipeline.start called twice');
    this.#started = true;
    await this.#options.speechToText.start({
      speechStarted: () => this.#onSpeechStarted(),
      utterance: (text) => this.#onUtterance(text),
      failed: (error) => {
        this.#log.error({ err: error }, 'speech-to-text failed; voice pipeline closing');
        void this.close();
      },
    });
    if (this.#closed) return;
    this.#pumping = this.#pumpAudio();
  }

  /** Stops the turn in progress, closes speech-to-text and the transport, and waits for all of it. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#pending = [];
      this.#interrupt('closed');
      const results = await Promise.allSettled([this.#options.speechToText.close(), this.#options.transport.close()]);
      for (const result of results) {
        if (result.status === 'rejected') this.#log.warn({ err: result.reason }, 'voice pipeline: close failed');
      }
      await Promise.allSettled([this.#working, this.#pumping]);
      this.#resolveClosed();
    })();
    return this.#closing;
  }

  async #pumpAudio(): Promise<void> {
    try {
      for await (const frame of this.#options.transport.audioIn()) {
        if (this.#closed) break;
        this.#options.speechToText.send(frame);
      }
    } catch (error) {
      if (!this.#closed) this.#log.error({ err: error }, 'voice pipeline: audio input failed');
    } finally {
      // The user's audio ended (they left, the room closed): nothing more can be heard.
      void this.close();
    }
  }

  #onSpeechStarted(): void {
    this.#options.conversation.voiceActivity();
    if (this.#turn && !this.#turn.controller.signal.aborted) {
      this.#log.info({ clientMessageId: this.#turn.clientMessageId }, 'user interrupted the clone');
      this.#interrupt('barge-in');
    }
  }

  #onUtterance(text: string): void {
    if (this.#closed) return;
    this.#options.conversation.voiceActivity();
    this.#pending.push(text);
    // A new utterance supersedes the reply in progress (speechStarted has normally done this already).
    this.#interrupt('barge-in');
    this.#working ??= this.#work();
  }

  #interrupt(reason: 'barge-in' | 'closed'): void {
    const turn = this.#turn;
    if (!turn || turn.controller.signal.aborted) return;
    turn.controller.abort(new VoiceTurnAborted(reason));
    this.#options.transport.stopPlayback();
  }

  async #work(): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        this.#utterances += 1;
        const turn: Turn = {
          clientMessageId: `${this.#prefix}-${this.#utterances}`,
          content: this.#pending.splice(0).join(' '),
          controller: new AbortController(),
        };
        this.#turn = turn;
        try {
          await this.#runTurn(turn);
        } catch (error) {
          this.#log.error({ err: error, clientMessageId: turn.clientMessageId }, 'voice turn failed');
        } finally {
          this.#turn = undefined;
        }
      }
    } finally {
      // In the same step as the last look at #pending: an utterance arriving after it starts a new worker.
      this.#working = undefined;
    }
  }

  async #runTurn(turn: Turn): Promise<void> {
    const { signal } = turn.controller;
    const { clientMessageId, content } = turn;
    const log = this.#log.child({ clientMessageId });
    log.info({ chars: content.length }, 'voice turn started');
    const sentences = new SentenceQueue();
    const playback = this.#options.transport.play(this.#speak(sentences, signal, log)).catch((error: unknown) => {
      if (signal.aborted) return;
      log.error({ err: error }, 'voice turn: playback failed');
      // Nobody would hear the rest: stop the reply (and its billing) too.
      turn.controller.abort(error);
    });

    const splitter = new SentenceSplitter();
    try {
      const reply = this.#options.conversation.reply({ clientMessageId, content }, signal);
      for await (const delta of untilAborted(reply, signal)) {
        // the clone speaking is activity too
        this.#options.conversation.voiceActivity();
        for (const sentence of splitter.push(delta)) sentences.push(sentence);
      }
      if (!signal.aborted) {
        const rest = splitter.flush();
        if (rest) sentences.push(rest);
      }
    } catch (error) {
      // A refusal (session paused, out of credits…) or a lost connection: this turn has no answer.
      if (!signal.aborted) log.error({ err: error }, 'voice turn: the clone did not reply');
    } finally {
      sentences.end();
    }
    await playback;
    log.info({ interrupted: signal.aborted }, 'voice turn ended');
  }

  /** The turn's audio: each sentence's speech in order, the next ones already requested while one plays. */
  async *#speak(sentences: SentenceQueue, signal: AbortSignal, log: Logger): AsyncGenerator<AudioFrame> {
    const ahead: Prefetched[] = [];
    const topUp = (count: number) => {
      while (ahead.length < count) {
        const sentence = sentences.tryShift();
        if (sentence === undefined) return;
        ahead.push(new Prefetched(sentence, this.#options.textToSpeech.synthesize(sentence, signal)));
      }
    };
    while (!signal.aborted) {
      // The sentence to play next and those requested ahead of it.
      topUp(this.#lookahead + 1);
      const current = ahead.shift();
      if (!current) {
        if (sentences.ended) return;
        await sentences.waitForMore(signal);
        continue;
      }
      try {
        for await (const frame of current.frames(signal)) {
          if (signal.aborted) return;
          yield frame;
          topUp(this.#lookahead);
        }
      } catch (error) {
        if (signal.aborted) return;
        // One sentence that could not be spoken is skipped; the rest of the reply still is.
        log.error({ err: error, chars: current.text.length }, 'voice turn: speech synthesis failed');
      }
    }
  }
}

/** The reason a turn's signal aborts with. */
export class VoiceTurnAborted extends Error {
  override readonly name = 'VoiceTurnAborted';
  constructor(readonly reason: 'barge-in' | 'closed') {
    super(reason === 'barge-in' ? 'the user interrupted the clone' : 'the voice pipeline closed');
  }
}

/** Sentences of one reply, pushed as they complete and taken by the speaker. */
class SentenceQueue {
  #items: string[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  get ended(): boolean {
    return this.#ended && this.#items.length === 0;
  }

  push(sentence: string): void {
    this.#items.push(sentence);
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  tryShift(): string | undefined {
    return this.#items.shift();
  }

  /** Resolves when a sentence was pushed, the queue ended or `signal` aborted. */
  waitForMore(signal: AbortSignal): Promise<void> {
    if (this.#items.length > 0 || this.#ended || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #notify(): void {
    this.#wake?.();
  }
}

/** One sentence's speech, requested at once and buffered until it is played. */
class Prefetched {
  readonly text: string;
  #frames: AudioFrame[] = [];
  #done = false;
  #failed = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  constructor(text: string, source: AsyncIterable<AudioFrame>) {
    this.text = text;
    void this.#pump(source);
  }

  /** The frames as they come; ends early, without error, when `signal` aborts. */
  async *frames(signal: AbortSignal): AsyncGenerator<AudioFrame> {
    const wakeOnAbort = () => this.#notify();
    signal.addEventListener('abort', wakeOnAbort, { once: true });
    try {
      while (!signal.aborted) {
        const frame = this.#frames.shift();
        if (frame) {
          yield frame;
          continue;
        }
        if (this.#done) {
          if (this.#failed) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', wakeOnAbort);
    }
  }

  async #pump(source: AsyncIterable<AudioFrame>): Promise<void> {
    try {
      for await (const frame of source) {
        this.#frames.push(frame);
        this.#notify();
      }
    } catch (error) {
      this.#failed = true;
      this.#error = error;
    } finally {
      this.#done = true;
      this.#notify();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * Iterates `source` until `signal` aborts, then ends at once (a reply stuck on the network must not hold up the
 * next turn or `close()`). The source is told to stop with `return()`, not waited for.
 */
async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
  });
  let finished = false;
  try {
    while (!signal.aborted) {
      const result = await Promise.race([iterator.next(), aborted]);
      if (result === 'aborted') return;
      if (result.done) {
        finished = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}
