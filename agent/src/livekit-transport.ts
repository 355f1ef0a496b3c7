/**
 * `LiveKitTransport`: the voice pipeline's `MediaTransport` in a LiveKit room, on `@livekit/rtc-node`. The agent
 * joins the session's room, hears the microphone of the participant whose identity is the user's id, and speaks
 * through one published microphone track.
 *
 * `@livekit/rtc-node` keeps a process-wide native client: the agent's entry point calls its `dispose()` once at
 * exit, after every transport is closed.
 */
import {
  AudioFrame as LiveKitAudioFrame,
  AudioResampler,
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteTrackPublication,
} from '@livekit/rtc-node';
import type { Logger } from 'pino';
import type { AudioFrame, MediaTransport } from './media-transport.ts';

export interface LiveKitTransportOptions {
  /** LiveKit server URL (config LIVEKIT_URL). */
  url: string;
  /** The agent's access token for the session's room (may subscribe and publish). */
  token: string;
  /** Identity of the user in the room (their user id): only their microphone is listened to. */
  userIdentity: string;
  /** Sample rate of `audioIn()` frames, which LiveKit resamples to (mono); default 16 000. */
  inputSampleRate?: number;
  /** Length of `audioIn()` frames in ms; default 20. */
  inputFrameMs?: number;
  /**
   * Sample rate of the published track (mono); `play()` resamples frames at other rates. Default 24 000, the
   * text-to-speech rate, so nothing is resampled.
   */
  outputSampleRate?: number;
  /** Audio the published track buffers ahead, in ms; `play()` waits when it is full; default 1000. */
  outputQueueMs?: number;
  /** Name of the published track; default `clone-voice`. */
  trackName?: string;
  logger: Logger;
}

export class LiveKitTransport implements MediaTransport {
  readonly #options: LiveKitTransportOptions;
  readonly #room = new Room();
  readonly #source: AudioSource;
  #track: LocalAudioTrack | undefined;
  /** The user's subscribed microphone track, while there is one. */
  #userTrack: RemoteTrack | undefined;
  #trackWaiters = new Set<() => void>();
  #reader: ReadableStreamDefaultReader<LiveKitAudioFrame> | undefined;
  #stopPlaying: AbortController | undefined;
  #resamplers = new Map<number, AudioResampler>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: LiveKitTransportOptions) {
    this.#options = options;
    this.#source = new AudioSource(options.outputSampleRate ?? 24_000, 1, options.outputQueueMs ?? 1000);
  }

  /** Joins the room and publishes the clone's voice track. Rejects if the room cannot be joined (then `close()`). */
  async start(): Promise<void> {
    const room = this.#room;
    room
      .on(RoomEvent.TrackSubscribed, (track, publication, participant) =>
        this.#onTrackSubscribed(track, publication, participant),
      )
      .on(RoomEvent.TrackUnsubscribed, (track) => {
        if (track === this.#userTrack) this.#userTrack = undefined;
      })
      .on(RoomEvent.Disconnected, (reason) => {
        this.#options.logger.info({ reason }, 'left the LiveKit room');
        void this.close();
      });
    await room.connect(this.#options.url, this.#options.token, { autoSubscribe: true, dynacast: false });

    // The user may have joined (and been subscribed to) before the listeners above could see it.
    const user = room.remoteParticipants.get(this.#options.userIdentity);
    if (user) {
      for (const publication of user.trackPublications.values()) {
        // A remote participant's publications only ever hold remote tracks.
        if (publication.track) this.#onTrackSubscribed(publication.track as RemoteTrack, publication, user);
      }
    }

    this.#track = LocalAudioTrack.createAudioTrack(this.#options.trackName ?? 'clone-voice', this.#source);
    const publishOptions = new TrackPublishOptions();
    publishOptions.source = TrackSource.SOURCE_MICROPHONE;
    await room.localParticipant!.publishTrack(this.#track, publishOptions);
  }

  async *audioIn(): AsyncGenerator<AudioFrame> {
    const sampleRate = this.#options.inputSampleRate ?? 16_000;
    while (!this.#closed) {
      const track = this.#userTrack;
      if (!track) {
        await new Promise<void>((resolve) => this.#trackWaiters.add(resolve));
        continue;
      }
      const stream = new AudioStream(track, {
        sampleRate,
        numChannels: 1,
        frameSizeMs: this.#options.inputFrameMs ?? 20,
      });
      const reader = stream.getReader();
      this.#reader = reader;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          // Done when the track went away (the user unpublished or left): wait for their next one.
          if (done || this.#closed) break;
          yield { samples: value.data, sampleRate: value.sampleRate, channels: value.channels };
        }
      } finally {
        this.#reader = undefined;
        if (track === this.#userTrack && !this.#closed) this.#userTrack = undefined;
        await reader.cancel().catch(() => {});
      }
    }
  }

  async play(frames: AsyncIterable<AudioFrame>): Promise<void> {
    if (this.#stopPlaying) throw new Error('LiveKitTransport.play: already playing');
    if (this.#closed) return;
    const stop = new AbortController();
    this.#stopPlaying = stop;
    const stopped = new Promise<'stopped'>((resolve) =>
      stop.signal.addEventListener('abort', () => resolve('stopped'), { once: true }),
    );
    const iterator = frames[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), stopped]);
        if (next === 'stopped') return;
        if (next.done) {
          finished = true;
          break;
        }
        for (const frame of this.#toOutput(next.value)) {
          // Waits while the track's queue is full, which paces playback at real time.
          await this.#source.captureFrame(frame);
          if (stop.signal.aborted) return;
        }
      }
      for (const frame of this.#flushResamplers()) await this.#source.captureFrame(frame);
      await Promise.race([this.#source.waitForPlayout(), stopped]);
    } finally {
      if (this.#stopPlaying === stop) this.#stopPlaying = undefined;
      if (!finished) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }

  stopPlayback(): void {
    const stop = this.#stopPlaying;
    if (!stop) return;
    stop.abort();
    // Drops what the track still holds, so the clone goes quiet now rather than in up to outputQueueMs.
    this.#source.clearQueue();
    this.#flushResamplers();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.stopPlayback();
      for (const wake of this.#trackWaiters) wake();
      this.#trackWaiters.clear();
      await this.#reader?.cancel().catch(() => {});
      try {
        await this.#room.disconnect();
      } finally {
        await this.#track?.close();
        if (!this.#track) await this.#source.close();
        for (const resampler of this.#resamplers.values()) resampler.close();
        this.#resamplers.clear();
      }
    })();
    return this.#closing;
  }

  #onTrackSubscribed(track: RemoteTrack, publication: RemoteTrackPublication, participant: RemoteParticipant): void {
    if (participant.identity !== this.#options.userIdentity || track.kind !== TrackKind.KIND_AUDIO) return;
    // A screen share's audio is not the user speaking.
    if (publication.source !== undefined && publication.source !== TrackSource.SOURCE_MICROPHONE) return;
    this.#userTrack = track;
    for (const wake of this.#trackWaiters) wake();
    this.#trackWaiters.clear();
  }

  /** The frame as the published track takes it: mono at its rate. */
  #toOutput(frame: AudioFrame): LiveKitAudioFrame[] {
    if (frame.channels !== 1) throw new RangeError(`play() takes mono frames, got ${frame.channels} channels`);
    const samplesPerChannel = frame.samples.length;
    const liveKitFrame = new LiveKitAudioFrame(frame.samples, frame.sampleRate, 1, samplesPerChannel);
    if (frame.sampleRate === this.#source.sampleRate) return [liveKitFrame];
    let resampler = this.#resamplers.get(frame.sampleRate);
    if (!resampler) {
      resampler = new AudioResampler(frame.sampleRate, this.#source.sampleRate, 1);
      this.#resamplers.set(frame.sampleRate, resampler);
    }
    return resampler.push(liveKitFrame);
  }

  #flushResamplers(): LiveKitAudioFrame[] {
    return [...this.#resamplers.values()].flatMap((resampler) => resampler.flush());
  }
}
