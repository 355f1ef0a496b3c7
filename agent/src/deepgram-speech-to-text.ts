/**
 * `DeepgramSpeechToText`: live transcription over Deepgram's streaming API (`/v1/listen`) with the official SDK.
 *
 * Utterances are assembled as Deepgram's endpointing guide describes: final (`is_final`) segments accumulate
 * until one also carries `speech_final` (the speaker paused for `endpointingMs`), or until an `UtteranceEnd`
 * arrives (no word for `utteranceEndMs`, which catches the pauses endpointing misses in noisy audio).
 */
import type { DeepgramClient, listen } from '@deepgram/sdk';
import type { Logger } from 'pino';
import { createDeepgramClient } from './deepgram-client.ts';
import type { AudioFrame } from './media-transport.ts';
import type { SpeechToText, SpeechToTextListener } from './speech-to-text.ts';

type ListenSocket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;
type ListenMessage =
  | listen.ListenV1Results
  | listen.ListenV1Metadata
  | listen.ListenV1UtteranceEnd
  | listen.ListenV1SpeechStarted;

const OPEN = 1;

export interface DeepgramSpeechToTextOptions {
  /** Deepgram API key (config DEEPGRAM_API_KEY). */
  apiKey: string;
  /** API base URL (config DEEPGRAM_BASE_URL); default `https://api.deepgram.com`. */
  baseUrl?: string;
  /** Model (config DEEPGRAM_STT_MODEL), e.g. `nova-3`. */
  model: string;
  /** BCP-47 language sent as `language`; default `en`. */
  language?: string;
  /** Sample rate of the frames given to `send` (linear16, mono); default 16 000. */
  sampleRate?: number;
  /**
   * Silence, in ms, after which Deepgram ends an utterance (`endpointing`, `speech_final`); default 300. `false`
   * turns endpointing off: utterances then end with `UtteranceEnd` only.
   */
  endpointingMs?: number | false;
  /** Gap after the last word, in ms, after which Deepgram sends `UtteranceEnd` (at least 1000); default 1000. */
  utteranceEndMs?: number;
  /**
   * A `KeepAlive` is sent when no audio went out for this long, in ms; default 4000. (Deepgram closes a stream
   * that gets neither audio nor a KeepAlive for 10 s, and asks for one every 3–5 s.)
   */
  keepAliveMs?: number;
  /**
   * How many times, over the stream's life, a stream that Deepgram or the network closed (any code but 1000) is
   * reopened before `failed` is reported; default 5. An attempt that cannot connect is not retried.
   */
  reconnectAttempts?: number;
  /** How long `close()` waits for Deepgram to flush and close after `CloseStream`, in ms; default 2000. */
  closeTimeoutMs?: number;
  logger: Logger;
}

export class DeepgramSpeechToText implements SpeechToText {
  readonly #client: DeepgramClient;
  readonly #options: DeepgramSpeechToTextOptions;
  readonly #sampleRate: number;
  readonly #keepAliveMs: number;
  readonly #reconnectAttempts: number;
  #socket: ListenSocket | undefined;
  #listener: SpeechToTextListener | undefined;
  #keepAliveTimer: NodeJS.Timeout | undefined;
  #lastSentAt = 0;
  /** Final segments of the utterance in progress. */
  #segments: string[] = [];
  /** Whether words of the utterance in progress were heard (speechStarted reported). */
  #speaking = false;
  #started = false;
  #closing = false;
  #ended = false;
  #reconnects = 0;
  /** What the last close decided: set by `shouldReconnect`, which the SDK consults before the close event. */
  #reconnecting = false;
  readonly #endedWaiters = new Set<() => void>();

  constructor(options: DeepgramSpeechToTextOptions) {
    this.#options = options;
    this.#sampleRate = options.sampleRate ?? 16_000;
    this.#keepAliveMs = options.keepAliveMs ?? 4000;
    this.#reconnectAttempts = options.reconnectAttempts ?? 5;
    this.#client = createDeepgramClient({
      apiKey: options.apiKey,
      baseUrl: options.baseUrl ?? 'https://api.deepgram.com',
    });
  }

  async start(listener: SpeechToTextListener): Promise<void> {
    if (this.#socket) throw new Error('DeepgramSpeechToText.start called twice');
    this.#listener = listener;
    const socket = await this.#client.listen.v1.connect({
      model: this.#options.model,
      language: this.#options.language ?? 'en',
      encoding: 'linear16',
      sample_rate: this.#sampleRate,
      channels: 1,
      interim_results: 'true',
      punctuate: 'true',
      smart_format: 'true',
      endpointing: this.#options.endpointingMs ?? 300,
      utterance_end_ms: Math.max(1000, this.#options.utteranceEndMs ?? 1000),
      // The limit is kept by shouldReconnect; the SDK's own must never be the one reached, as it stops silently.
      reconnectAttempts: this.#reconnectAttempts + 1,
      connectionTimeoutInSeconds: 10,
      shouldReconnect: (event) => {
        // 1000 is Deepgram's answer to CloseStream (and the SDK's own code for a failed attempt): final.
        this.#reconnecting = !this.#closing && event.code !== 1000 && this.#reconnects < this.#reconnectAttempts;
        if (this.#reconnecting) this.#reconnects += 1;
        return this.#reconnecting;
      },
    });
    this.#socket = socket;
    socket.on('message', (message) => this.#onMessage(message));
    socket.on('open', () => {
      if (this.#started) this.#options.logger.info('deepgram stream reopened');
    });
    socket.on('close', (event) => this.#onClose(event.code, event.reason ?? ''));
    socket.on('error', (error) => this.#options.logger.warn({ err: error }, 'deepgram stream error'));
    socket.connect();
    try {
      await socket.waitForOpen();
    } catch (error) {
      this.#closing = true;
      socket.close();
      throw new Error(`could not open the Deepgram stream: ${describe(error)}`);
    }
    this.#started = true;
    this.#lastSentAt = Date.now();
    this.#keepAliveTimer = setInterval(() => this.#keepAlive(), Math.max(50, this.#keepAliveMs / 4));
  }

  send(frame: AudioFrame): void {
    if (frame.channels !== 1 || frame.sampleRate !== this.#sampleRate) {
      throw new RangeError(
        `expected mono ${this.#sampleRate} Hz frames, got ${frame.channels} channel(s) at ${frame.sampleRate} Hz`,
      );
    }
    const socket = this.#socket;
    if (!socket || this.#closing || socket.readyState !== OPEN || frame.samples.length === 0) return;
    // linear16 is little-endian, as Int16Array is on every platform Node runs on.
    socket.sendMedia(frame.samples);
    this.#lastSentAt = Date.now();
  }

  async close(): Promise<void> {
    if (this.#closing) return this.#waitEnded(0);
    this.#closing = true;
    clearInterval(this.#keepAliveTimer);
    const socket = this.#socket;
    if (!socket) return;
    if (!this.#ended && socket.readyState === OPEN) {
      // Deepgram then transcribes what it still holds, sends the last results and Metadata, and closes.
      socket.sendCloseStream({ type: 'CloseStream' });
      await this.#waitEnded(this.#options.closeTimeoutMs ?? 2000);
    }
    socket.close();
    this.#ended = true;
  }

  #keepAlive(): void {
    const socket = this.#socket;
    if (!socket || this.#closing || socket.readyState !== OPEN) return;
    if (Date.now() - this.#lastSentAt < this.#keepAliveMs) return;
    socket.sendKeepAlive({ type: 'KeepAlive' });
    this.#lastSentAt = Date.now();
  }

  #onMessage(message: ListenMessage): void {
    // The SDK hands on a message it cannot parse as it came (a string or a Blob).
    if (typeof message !== 'object' || message === null || !('type' in message)) return;
    if (message.type === 'Results') {
      const transcript = message.channel.alternatives[0]?.transcript.trim() ?? '';
      if (transcript && !this.#speaking) {
        this.#speaking = true;
        this.#listener?.speechStarted();
      }
      if (!message.is_final) return;
      if (transcript) this.#segments.push(transcript);
      if (message.speech_final) this.#finishUtterance();
    } else if (message.type === 'UtteranceEnd') {
      this.#finishUtterance();
    }
  }

  #finishUtterance(): void {
    const text = this.#segments.join(' ').trim();
    this.#segments = [];
    this.#speaking = false;
    if (text) this.#listener?.utterance(text);
  }

  #onClose(code: number, reason: string): void {
    const reconnecting = this.#reconnecting;
    this.#reconnecting = false;
    if (reconnecting) {
      this.#options.logger.warn({ code, reason }, 'deepgram stream closed; reopening');
      return;
    }
    const wasEnded = this.#ended;
    this.#ended = true;
    clearInterval(this.#keepAliveTimer);
    for (const resolve of this.#endedWaiters) resolve();
    this.#endedWaiters.clear();
    if (wasEnded || !this.#started) return;
    // Words heard before the stream ended (flushed by CloseStream, or before it died) still make an utterance.
    this.#finishUtterance();
    if (this.#closing) return;
    this.#listener?.failed(new Error(`the Deepgram stream closed (code ${code}${reason ? `: ${reason}` : ''})`));
  }

  #waitEnded(timeoutMs: number): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#endedWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#endedWaiters.add(done);
    });
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) return String(error.message);
  return String(error);
}
