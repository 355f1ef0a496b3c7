/**
 * `DeepgramTextToSpeech`: the clone's voice from Deepgram's text-to-speech REST API (`POST /v1/speak`) through the
 * official SDK, asking for raw linear16 (no container) and cutting the streamed body into frames as it arrives.
 */
import type { DeepgramClient } from '@deepgram/sdk';
import { createDeepgramClient } from './deepgram-client.ts';
import type { AudioFrame } from './media-transport.ts';
import type { TextToSpeech } from './text-to-speech.ts';

/** Deepgram refuses longer texts per request. */
const MAX_SPEAK_CHARS = 2000;

export interface DeepgramTextToSpeechOptions {
  /** Deepgram API key (config DEEPGRAM_API_KEY). */
  apiKey: string;
  /** API base URL (config DEEPGRAM_BASE_URL); default `https://api.deepgram.com`. */
  baseUrl?: string;
  /** Voice (config DEEPGRAM_TTS_MODEL), e.g. `aura-2-thalia-en`. */
  model: string;
  /** Sample rate of the audio asked for, and of the frames yielded (mono); default 24 000. */
  sampleRate?: number;
  /** Length of each yielded frame in ms (the last one of a text may be shorter); default 20. */
  frameMs?: number;
  /** Retries of a request failing with 408/429/5xx or a network error (the SDK's backoff); default 2. */
  maxRetries?: number;
  /** Seconds to wait for the response to start; default 15. */
  timeoutSeconds?: number;
}

export class DeepgramTextToSpeech implements TextToSpeech {
  readonly #client: DeepgramClient;
  readonly #options: DeepgramTextToSpeechOptions;
  readonly #sampleRate: number;
  readonly #frameBytes: number;

  constructor(options: DeepgramTextToSpeechOptions) {
    this.#options = options;
    this.#sampleRate = options.sampleRate ?? 24_000;
    this.#frameBytes = Math.max(1, Math.round((this.#sampleRate * (options.frameMs ?? 20)) / 1000)) * 2;
    this.#client = createDeepgramClient({
      apiKey: options.apiKey,
      baseUrl: options.baseUrl ?? 'https://api.deepgram.com',
    });
  }

  async *synthesize(text: string, signal: AbortSignal): AsyncGenerator<AudioFrame> {
    if (text.length > MAX_SPEAK_CHARS) {
      throw new RangeError(`text to speak is ${text.length} characters; Deepgram takes at most ${MAX_SPEAK_CHARS}`);
    }
    signal.throwIfAborted();
    let body: ReadableStream<Uint8Array> | null;
    try {
      const response = await this.#client.speak.v1.audio.generate(
        { text, model: this.#options.model, encoding: 'linear16', container: 'none', sample_rate: this.#sampleRate },
        {
          abortSignal: signal,
          maxRetries: this.#options.maxRetries ?? 2,
          timeoutInSeconds: this.#options.timeoutSeconds ?? 15,
        },
      );
      body = response.stream();
    } catch (error) {
      // The SDK reports an abort as a generic error; the caller expects the reason it aborted with.
      signal.throwIfAborted();
      throw error;
    }
    if (!body) return;

    const reader = body.getReader();
    const stop = () => void reader.cancel(signal.reason).catch(() => {});
    signal.addEventListener('abort', stop, { once: true });
    // Bytes of an incomplete frame (or an odd byte) carried to the next chunk.
    let pending: Uint8Array = new Uint8Array(0);
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          signal.throwIfAborted();
          throw error;
        }
        signal.throwIfAborted();
        if (chunk.done) break;
        pending = concat(pending, chunk.value);
        let offset = 0;
        while (pending.length - offset >= this.#frameBytes) {
          yield this.#frame(pending.subarray(offset, offset + this.#frameBytes));
          offset += this.#frameBytes;
        }
        pending = pending.subarray(offset);
      }
      const whole = pending.length - (pending.length % 2);
      if (whole > 0) yield this.#frame(pending.subarray(0, whole));
    } finally {
      signal.removeEventListener('abort', stop);
      // Ends the request when the consumer stopped early (a `break`, a barge-in).
      stop();
    }
  }

  #frame(bytes: Uint8Array): AudioFrame {
    // A copy, aligned for Int16Array; linear16 is little-endian, as Int16Array is wherever Node runs.
    const copy = bytes.slice();
    return { samples: new Int16Array(copy.buffer, 0, copy.length / 2), sampleRate: this.#sampleRate, channels: 1 };
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
