/**
 * `MemoryTransport`: an in-memory `MediaTransport` for the voice tests. Its "microphone" plays WAV files given to
 * it, in order, then silence (an open microphone in a quiet room) until it is closed, one frame per `frameMs`.
 * What the pipeline plays is consumed at the same pace and recorded, one entry per `play()`.
 *
 *   const transport = new MemoryTransport({ wav: writeWav(...) });
 *   transport.feed(writeWav(...));           // the user speaks again
 *   transport.playbacks[0].samples            // how much of the first reply was heard
 */
import type { AudioFrame, MediaTransport } from '#agent/media-transport.ts';
import { readWav } from './wav.ts';

export interface MemoryTransportOptions {
  /** The first audio the microphone plays (16-bit mono WAV); default none (silence). */
  wav?: Uint8Array;
  /** Microphone rate when no WAV sets it; every WAV fed must have the same; default 16 000. */
  sampleRate?: number;
  /** Length of each microphone frame; default 20 ms. */
  frameMs?: number;
  /** How much faster than real time audio goes in and out (2 = twice as fast); default 1. */
  speed?: number;
}

/** One `play()` call. */
export interface Playback {
  frames: number;
  /** Samples played (all frames are mono). */
  samples: number;
  /** Milliseconds of audio played, at the frames' rates. */
  ms: number;
  /** True when `stopPlayback()` cut it short. */
  stopped: boolean;
  /** True once `play()` has returned. */
  ended: boolean;
}

export class MemoryTransport implements MediaTransport {
  readonly playbacks: Playback[] = [];
  readonly #sampleRate: number;
  readonly #frameMs: number;
  readonly #speed: number;
  readonly #queue: Int16Array[] = [];
  #closed = false;
  #stop: (() => void) | undefined;

  constructor(options: MemoryTransportOptions = {}) {
    this.#frameMs = options.frameMs ?? 20;
    this.#speed = options.speed ?? 1;
    this.#sampleRate = options.sampleRate ?? 16_000;
    if (options.wav) this.feed(options.wav);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a WAV for the microphone, after what it is still playing. */
  feed(wav: Uint8Array): void {
    const pcm = readWav(wav);
    if (pcm.channels !== 1 || pcm.sampleRate !== this.#sampleRate) {
      throw new Error(`MemoryTransport takes mono ${this.#sampleRate} Hz WAVs`);
    }
    this.#queue.push(pcm.samples);
  }

  async *audioIn(): AsyncGenerator<AudioFrame> {
    const frameSamples = Math.round((this.#sampleRate * this.#frameMs) / 1000);
    const started = Date.now();
    let sent = 0;
    while (!this.#closed) {
      const samples = new Int16Array(frameSamples);
      let filled = 0;
      while (filled < frameSamples && this.#queue.length > 0) {
        const head = this.#queue[0]!;
        const take = Math.min(frameSamples - filled, head.length);
        samples.set(head.subarray(0, take), filled);
        filled += take;
        if (take === head.length) this.#queue.shift();
        else this.#queue[0] = head.subarray(take);
      }
      yield { samples, sampleRate: this.#sampleRate, channels: 1 };
      sent += 1;
      // Paced against the start, so timer lateness does not add up.
      await this.#sleep(started + (sent * this.#frameMs) / this.#speed - Date.now());
    }
  }

  async play(frames: AsyncIterable<AudioFrame>): Promise<void> {
    if (this.#stop) throw new Error('MemoryTransport.play: already playing');
    const playback: Playback = { frames: 0, samples: 0, ms: 0, stopped: false, ended: false };
    this.playbacks.push(playback);
    let stop!: () => void;
    const stopped = new Promise<'stopped'>((resolve) => (stop = () => resolve('stopped')));
    this.#stop = () => {
      playback.stopped = true;
      stop();
    };
    const iterator = frames[Symbol.asyncIterator]();
    let finished = false;
    const started = Date.now();
    try {
      while (!this.#closed) {
        const next = await Promise.race([iterator.next(), stopped]);
        if (next === 'stopped') return;
        if (next.done) {
          finished = true;
          return;
        }
        const frame = next.value;
        if (frame.channels !== 1) throw new Error('MemoryTransport plays mono frames only');
        playback.frames += 1;
        playback.samples += frame.samples.length;
        playback.ms += (frame.samples.length / frame.sampleRate) * 1000;
        // "Plays" it: the next frame is taken when this one has been heard.
        const result = await Promise.race([this.#sleep(started + playback.ms / this.#speed - Date.now()), stopped]);
        if (result === 'stopped') return;
      }
    } finally {
      playback.ended = true;
      this.#stop = undefined;
      if (!finished) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }

  stopPlayback(): void {
    this.#stop?.();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stop?.();
  }

  #sleep(ms: number): Promise<void> {
    return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
  }
}
