/**
 * `MediaTransport`: what the voice pipeline needs from a room — the user's microphone in, the clone's voice
 * out, and a way to cut the clone off. `LiveKitTransport` is the real one; tests use an in-memory one.
 */

/** A slice of PCM audio: signed 16-bit samples, interleaved when `channels` > 1. */
export interface AudioFrame {
  samples: Int16Array;
  /** Samples per second per channel. */
  sampleRate: number;
  channels: number;
}

export interface MediaTransport {
  /**
   * The user's microphone audio, mono, until the transport closes (the iteration then ends). Frames keep coming
   * during silence, as a microphone's do. Iterated once.
   */
  audioIn(): AsyncIterable<AudioFrame>;
  /**
   * Plays the frames into the room in order, at real time. Resolves when all were played, or early when
   * `stopPlayback()` cut it short (the rest of `frames` is then not read); rejects if the room fails.
   * One playback at a time.
   */
  play(frames: AsyncIterable<AudioFrame>): Promise<void>;
  /** Stops what is playing now, dropping what is queued (the user interrupted). No-op when nothing plays. */
  stopPlayback(): void;
  /** Leaves the room; `audioIn()` ends and a playback in progress stops. Idempotent. */
  close(): Promise<void>;
}

