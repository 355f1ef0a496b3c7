/**
 * A local stand-in for Deepgram, speaking its wire format so tests drive the real `@deepgram/sdk` with no network:
 *
 * - the live transcription websocket, `GET /v1/listen` (linear16 only). It "recognises" real audio with an energy
 *   detector: each burst of sound followed by `silenceMs` of silence is one utterance, answered with the next of
 *   the `transcripts` the test gives. When a burst starts it sends `SpeechStarted` (with `vad_events=true`) and an
 *   interim `Results` (with `interim_results=true`) holding the first word; when the silence has lasted it sends
 *   the final `Results` (`speech_final` unless `endpointing=false`), and `UtteranceEnd` once `utterance_end_ms`
 *   of silence followed the last word (when asked for). `KeepAlive`, `Finalize` and `CloseStream` are handled as
 *   Deepgram does (CloseStream: last results, `Metadata`, close 1000); a stream that gets neither audio nor a
 *   message for `idleTimeoutMs` is closed with 1011 (Deepgram's NET-0001).
 * - text to speech, `POST /v1/speak` (linear16): a sine tone `speakMsPerChar` long per character of the text,
 *   raw (`container=none`) or in a WAV, streamed in chunks.
 *
 * Both require `Authorization: Token <key>` (a given `apiKey` exactly) and record what they got.
 *
 *   const deepgram = await startFakeDeepgram({ transcripts: ['What is a Roth IRA?'] });
 *   new DeepgramSpeechToText({ apiKey: 'dg-test', baseUrl: deepgram.url, ... });
 *   …
 *   await deepgram.close();
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { writeWav } from './wav.ts';

export interface FakeDeepgramOptions {
  /** What the utterances heard say, in order; once used up, `utterance <n>`. */
  transcripts?: string[];
  /** When set, only `Token <apiKey>` is accepted; default any `Token …`. */
  apiKey?: string;
  /** Silence (audio time) after a burst that ends an utterance; default 300 ms. */
  silenceMs?: number;
  /** RMS of a 10 ms window above which it counts as sound; default 1000. */
  threshold?: number;
  /** A stream that receives neither audio nor a message for this long is closed (NET-0001); default 10 000 ms. */
  idleTimeoutMs?: number;
  /** Milliseconds of speech per character of text; default 10. */
  speakMsPerChar?: number;
  /** Bytes per chunk of a speak response; default 4800 (100 ms at 24 kHz). */
  speakChunkBytes?: number;
  /** Delay before each chunk of a speak response; default 5 ms. */
  speakChunkDelayMs?: number;
  /** Answer the next this many speak requests with HTTP 500; default 0. */
  failNextSpeaks?: number;
}

/** One `/v1/listen` connection. */
export interface FakeListenStream {
  query: URLSearchParams;
  authorization: string | undefined;
  /** Audio bytes received. */
  bytes: number;
  /** Audio received, in ms at the stream's rate. */
  audioMs: number;
  keepAlives: number;
  finalizes: number;
  closeStreamReceived: boolean;
  /** Every JSON message sent to the client, in order. */
  sent: Array<Record<string, unknown>>;
  /** The transcripts of the utterances heard (final results sent). */
  utterances: string[];
  /** How the stream closed, once it has. */
  closed: { code: number; reason: string } | undefined;
}

/** One `/v1/speak` request. */
export interface FakeSpeakRequest {
  query: URLSearchParams;
  authorization: string | undefined;
  contentType: string | undefined;
  text: string;
  status: number;
  /** Audio bytes sent (WAV header excluded). */
  audioBytes: number;
  /** Audio bytes the whole text makes. */
  totalAudioBytes: number;
  /** `completed` once all was sent; `client_closed` when the client went away before. */
  outcome: 'pending' | 'completed' | 'client_closed' | 'failed';
}

export interface FakeDeepgram {
  /** Base URL for the SDK (`http://127.0.0.1:<port>`). */
  url: string;
  streams: FakeListenStream[];
  speaks: FakeSpeakRequest[];
  /** Texts of the speak requests, in arrival order. */
  readonly spokenTexts: string[];
  /** Samples the fake speaks `text` in, at `sampleRate`. */
  samplesFor(text: string, sampleRate: number): number;
  /** Closes every open listen stream with this code, as a network failure or Deepgram restart would. */
  dropStreams(code?: number, reason?: string): void;
  close(): Promise<void>;
}

const MODEL_UUID = '1ed36bac-f71c-4f3f-a31f-02fd6525c489';
const NET_0001 = 'Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001';

export async function startFakeDeepgram(options: FakeDeepgramOptions = {}): Promise<FakeDeepgram> {
  const transcripts = [...(options.transcripts ?? [])];
  let utteranceCount = 0;
  const nextTranscript = () => {
    utteranceCount += 1;
    return transcripts.shift() ?? `utterance ${utteranceCount}`;
  };
  const streams: FakeListenStream[] = [];
  const speaks: FakeSpeakRequest[] = [];
  const sockets = new Set<WebSocket>();
  const msPerChar = options.speakMsPerChar ?? 10;
  const samplesFor = (text: string, sampleRate: number) => Math.round((text.length * msPerChar * sampleRate) / 1000);
  let speakFailures = options.failNextSpeaks ?? 0;

  const authorized = (header: string | undefined) =>
    header !== undefined && (options.apiKey === undefined ? /^Token \S+$/.test(header) : header === `Token ${options.apiKey}`);

  const server = createServer((req, res) => {
    void handleHttp(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, deepgramError('INTERNAL_SERVER_ERROR', String(error)));
      else res.destroy();
    });
  });
  const wss = new WebSocketServer({ noServer: true });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const refuse = (status: number, body: Record<string, unknown>) => {
      const json = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Bad Request'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n` +
          `dg-error: ${String(body['err_msg'])}\r\n\r\n${json}`,
      );
    };
    if (url.pathname !== '/v1/listen') return refuse(404, deepgramError('NOT_FOUND', 'Not found'));
    if (!authorized(req.headers.authorization)) {
      return refuse(401, deepgramError('INVALID_AUTH', 'Invalid credentials.'));
    }
    const query = url.searchParams;
    if (query.get('encoding') !== 'linear16') {
      return refuse(400, deepgramError('Bad Request', 'The fake Deepgram takes encoding=linear16 only.'));
    }
    const sampleRate = Number(query.get('sample_rate'));
    if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
      return refuse(400, deepgramError('Bad Request', 'sample_rate is required with encoding.'));
    }
    if ((query.get('channels') ?? '1') !== '1') {
      return refuse(400, deepgramError('Bad Request', 'The fake Deepgram takes channels=1 only.'));
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      const stream: FakeListenStream = {
        query,
        authorization: req.headers.authorization,
        bytes: 0,
        audioMs: 0,
        keepAlives: 0,
        finalizes: 0,
        closeStreamReceived: false,
        sent: [],
        utterances: [],
        closed: undefined,
      };
      streams.push(stream);
      runListenStream(ws, stream, sampleRate);
    });
  });

  function runListenStream(ws: WebSocket, stream: FakeListenStream, sampleRate: number): void {
    const requestId = randomUUID();
    const query = stream.query;
    const interim = query.get('interim_results') === 'true';
    const vadEvents = query.get('vad_events') === 'true';
    const endpointing = query.get('endpointing') !== 'false';
    const utteranceEndMs = query.has('utterance_end_ms') ? Number(query.get('utterance_end_ms')) : undefined;
    const silenceMs = options.silenceMs ?? 300;
    const threshold = options.threshold ?? 1000;
    const windowSamples = Math.max(1, Math.round(sampleRate / 100));
    const windowMs = (windowSamples / sampleRate) * 1000;
    const audioHash = createHash('sha256');
    const model = query.get('model') ?? 'base';

    let carry = Buffer.alloc(0);
    let window: number[] = [];
    let clock = 0; // ms of audio analysed
    let burst: { start: number; lastSound: number; transcript: string } | undefined;
    let utteranceEndAt: { at: number; lastWordEnd: number } | undefined;
    let ended = false;

    const send = (message: Record<string, unknown>) => {
      stream.sent.push(message);
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    const results = (transcript: string, start: number, end: number, flags: Record<string, boolean>) => {
      const words = transcript.split(/\s+/).filter(Boolean);
      const step = words.length > 0 ? (end - start) / words.length : 0;
      send({
        type: 'Results',
        channel_index: [0, 1],
        duration: round((end - start) / 1000),
        start: round(start / 1000),
        is_final: false,
        speech_final: false,
        ...flags,
        channel: {
          alternatives: [
            {
              transcript,
              confidence: 0.98,
              words: words.map((punctuated, i) => ({
                word: punctuated.toLowerCase().replace(/[^\p{L}\p{N}']/gu, ''),
                start: round((start + i * step) / 1000),
                end: round((start + (i + 1) * step) / 1000),
                confidence: 0.98,
                punctuated_word: punctuated,
              })),
            },
          ],
        },
        metadata: {
          request_id: requestId,
          model_info: { name: `2-general-${model}`, version: '2024-01-01.0', arch: model },
          model_uuid: MODEL_UUID,
        },
        from_finalize: flags['from_finalize'] ?? false,
      });
    };
    const finishBurst = (flags: Record<string, boolean>) => {
      if (!burst) return;
      const end = burst.lastSound;
      results(burst.transcript, burst.start, end, { is_final: true, ...flags });
      stream.utterances.push(burst.transcript);
      if (interim && utteranceEndMs !== undefined) utteranceEndAt = { at: end + utteranceEndMs, lastWordEnd: end };
      burst = undefined;
    };
    const analyse = (sample: number) => {
      window.push(sample);
      if (window.length < windowSamples) return;
      const rms = Math.sqrt(window.reduce((sum, s) => sum + s * s, 0) / window.length);
      window = [];
      const start = clock;
      clock += windowMs;
      if (rms > threshold) {
        utteranceEndAt = undefined;
        if (!burst) {
          burst = { start, lastSound: clock, transcript: nextTranscript() };
          if (vadEvents) send({ type: 'SpeechStarted', channel: [0, 1], timestamp: round(start / 1000) });
          const firstWord = burst.transcript.split(/\s+/)[0] ?? '';
          if (interim) results(firstWord, start, clock, {});
        }
        burst.lastSound = clock;
      } else if (burst && clock - burst.lastSound >= silenceMs) {
        finishBurst({ speech_final: endpointing });
      } else if (utteranceEndAt && clock >= utteranceEndAt.at) {
        send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: round(utteranceEndAt.lastWordEnd / 1000) });
        utteranceEndAt = undefined;
      }
    };

    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (!ended) ws.close(1011, NET_0001);
      }, options.idleTimeoutMs ?? 10_000);
    };
    armIdle();

    const endStream = () => {
      if (ended) return;
      ended = true;
      finishBurst({ speech_final: false });
      send({
        type: 'Metadata',
        transaction_key: 'deprecated',
        request_id: requestId,
        sha256: audioHash.digest('hex'),
        created: new Date().toISOString(),
        duration: round(stream.audioMs / 1000),
        channels: 1,
      });
      ws.close(1000);
    };

    ws.on('message', (data: RawData, isBinary: boolean) => {
      armIdle();
      const bytes = toBuffer(data);
      if (!isBinary) {
        let message: { type?: unknown };
        try {
          message = JSON.parse(bytes.toString('utf8')) as { type?: unknown };
        } catch {
          return;
        }
        if (message.type === 'KeepAlive') stream.keepAlives += 1;
        else if (message.type === 'Finalize') {
          stream.finalizes += 1;
          finishBurst({ speech_final: false, from_finalize: true });
        } else if (message.type === 'CloseStream') {
          stream.closeStreamReceived = true;
          endStream();
        }
        return;
      }
      if (ended) return;
      stream.bytes += bytes.length;
      audioHash.update(bytes);
      const all = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes;
      const whole = all.length - (all.length % 2);
      for (let offset = 0; offset < whole; offset += 2) analyse(all.readInt16LE(offset));
      carry = Buffer.from(all.subarray(whole));
      stream.audioMs = (stream.bytes / 2 / sampleRate) * 1000;
    });
    ws.on('close', (code, reason) => {
      ended = true;
      clearTimeout(idleTimer);
      stream.closed = { code, reason: reason.toString('utf8') };
    });
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    if (req.method !== 'POST' || url.pathname !== '/v1/speak') {
      sendJson(res, 404, deepgramError('NOT_FOUND', `No route for ${req.method} ${url.pathname}`));
      return;
    }
    const record: FakeSpeakRequest = {
      query: url.searchParams,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      text: '',
      status: 0,
      audioBytes: 0,
      totalAudioBytes: 0,
      outcome: 'pending',
    };
    speaks.push(record);
    const fail = (status: number, body: Record<string, unknown>) => {
      record.status = status;
      record.outcome = 'failed';
      sendJson(res, status, body);
    };
    if (!authorized(req.headers.authorization)) return fail(401, deepgramError('INVALID_AUTH', 'Invalid credentials.'));
    let body: { text?: unknown };
    try {
      body = JSON.parse(raw) as { text?: unknown };
    } catch {
      return fail(400, deepgramError('Bad Request', 'The request body is not valid JSON.'));
    }
    if (typeof body.text !== 'string' || body.text.trim() === '') {
      return fail(400, deepgramError('Bad Request', 'Text must be a non-empty string.'));
    }
    record.text = body.text;
    if (body.text.length > 2000) return fail(413, deepgramError('Bad Request', 'Text exceeds 2000 characters.'));
    if (speakFailures > 0) {
      speakFailures -= 1;
      return fail(500, deepgramError('INTERNAL_SERVER_ERROR', 'The fake failed on purpose.'));
    }
    const encoding = url.searchParams.get('encoding') ?? 'mp3';
    if (encoding !== 'linear16') {
      return fail(400, deepgramError('UNSUPPORTED_AUDIO_FORMAT', 'The fake Deepgram speaks linear16 only.'));
    }
    const container = url.searchParams.get('container') ?? 'wav';
    const sampleRate = Number(url.searchParams.get('sample_rate') ?? 24_000);
    const pcm = new Int16Array(samplesFor(body.text, sampleRate));
    for (let i = 0; i < pcm.length; i += 1) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 220 * i) / sampleRate));
    const audio = Buffer.from(pcm.buffer);
    record.totalAudioBytes = audio.length;
    record.status = 200;
    res.on('close', () => {
      if (record.outcome === 'pending') record.outcome = res.writableFinished ? 'completed' : 'client_closed';
    });
    const model = url.searchParams.get('model') ?? 'aura-asteria-en';
    res.writeHead(200, {
      'content-type': container === 'wav' ? 'audio/wav' : 'application/octet-stream',
      'dg-request-id': randomUUID(),
      'dg-model-name': model,
      'dg-model-uuid': MODEL_UUID,
      'dg-char-count': String(body.text.length),
    });
    if (container === 'wav') res.write(writeWav({ sampleRate, samples: pcm }).subarray(0, 44));
    const chunkBytes = options.speakChunkBytes ?? 4800;
    for (let offset = 0; offset < audio.length; offset += chunkBytes) {
      await delay(options.speakChunkDelayMs ?? 5);
      if (res.destroyed) return;
      const chunk = audio.subarray(offset, offset + chunkBytes);
      res.write(chunk);
      record.audioBytes += chunk.length;
    }
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    streams,
    speaks,
    get spokenTexts() {
      return speaks.filter((s) => s.status === 200).map((s) => s.text);
    },
    samplesFor,
    dropStreams(code = 1011, reason = 'fake drop') {
      for (const ws of sockets) ws.close(code, reason);
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function deepgramError(code: string, message: string): Record<string, unknown> {
  return { err_code: code, err_msg: message, request_id: randomUUID() };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
