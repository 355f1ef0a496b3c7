/**
 * `SpeechToText`: live transcription of the user's microphone as the voice pipeline sees it — a stream of frames
 * in, "the user started speaking" and whole utterances out. `DeepgramSpeechToText` is the implementation.
 */
import type { AudioFrame } from './media-transport.ts';

/** What a `SpeechToText` reports. Called synchronously from its I/O callbacks: keep them quick, never throw. */
export interface SpeechToTextListener {
  /** The first words of a new utterance were heard (the pipeline stops the clone when it is speaking). */
  speechStarted(): void;
  /** One whole utterance, final and non-empty. */
  utterance(text: string): void;
  /** The transcription stream failed for good after `start()` resolved; nothing more will be heard. */
  failed(error: Error): void;
}

export interface SpeechToText {
  /** Opens the stream; resolves once audio can be sent, rejects if it cannot be opened. */
  start(listener: SpeechToTextListener): Promise<void>;
  /**
   * Sends one frame of the user's audio: mono, at the rate the implementation was configured with (it throws
   * a RangeError for any other format). Frames sent while the stream is not open are dropped.
   */
  send(frame: AudioFrame): void;
  /** Flushes what was heard (final utterances may still be reported), then closes the stream. Idempotent. */
  close(): Promise<void>;
}
