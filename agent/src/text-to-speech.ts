/**
 * `TextToSpeech`: the clone's voice as the voice pipeline sees it — text in, PCM frames out as they are made.
 * `DeepgramTextToSpeech` is the implementation.
 */
import type { AudioFrame } from './media-transport.ts';

export interface TextToSpeech {
  /**
   * Speaks `text`, yielding frames as the audio arrives. The request starts on the first `next()`. Aborting
   * `signal` cancels the request and ends the iteration with `signal.reason` thrown.
   */
  synthesize(text: string, signal: AbortSignal): AsyncIterable<AudioFrame>;
}
