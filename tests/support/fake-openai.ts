/**
 * A local stand-in for OpenAI's chat completions endpoint, speaking its wire format (JSON, or SSE chunks
 * when `stream: true`), so tests drive the real `openai` SDK with no network. It also answers `/v1/embeddings`
 * (float or base64 vectors, deterministic: the local hashing embedding of each input, so similar texts are close).
 *
 *   const fake = await startFakeOpenAi({ reply: () => 'Hello there' });
 *   new OpenAI({ apiKey: 'sk-test', baseURL: fake.baseUrl });
 *   …
 *   await fake.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { hashEmbedding } from '#shared/embeddings/local-embedder.ts';

/** The request body as the SDK sends it (the fields the fake reads; the rest are kept as sent). */
export interface FakeChatRequest {
  model: string;
  messages: Array<{ role: string; content: unknown }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  [field: string]: unknown;
}

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** How an answered request ended: `client_closed` when the client hung up before the end of the reply. */
export type FakeOutcome = 'pending' | 'completed' | 'failed' | 'client_closed';

/** One POST /v1/chat/completions with a JSON body, in arrival order (other requests are answered 4xx, not recorded). */
export interface RecordedRequest {
  body: FakeChatRequest;
  /** The `Authorization` header as received, e.g. `Bearer sk-test`. */
  authorization: string | undefined;
  outcome: FakeOutcome;
}

export interface FakeOpenAiOptions {
  /** The reply text for a request; default `Fake reply to: <last user message>`. */
  reply?: (body: FakeChatRequest) => string;
  /**
   * Usage reported (total = prompt + completion); `null` reports none, not even when the stream asks for it.
   * Default: prompt = words in all messages, completion = content chunks sent.
   */
  usage?: FakeUsage | null;
  /** Milliseconds before each chunk of a streamed reply; default 0. */
  chunkDelayMs?: number;
  /** Milliseconds before the response headers are sent; default 0. */
  headersDelayMs?: number;
  /** Answer this many coming requests with HTTP 500, as an overloaded server would; default 0. */
  failNext?: number;
  /** Sent as `retry-after-ms` with each 500, which the SDK honours; default none (the SDK backs off itself). */
  retryAfterMs?: number;
  /** When set, any other Bearer key is answered 401 `invalid_api_key`; default any key is accepted. */
  apiKey?: string;
  /** End a streamed reply after this many content chunks, with no finish chunk and no `[DONE]`; default never. */
  endStreamAfter?: number;
  /** Answer this many coming embedding requests with HTTP 500 (with `retryAfterMs` as above); default 0. */
  failNextEmbeddings?: number;
}

/** One POST /v1/embeddings, in arrival order, answered or not. */
export interface RecordedEmbeddingRequest {
  body: { model: string; input: string | string[]; encoding_format?: string; dimensions?: number; [field: string]: unknown };
  authorization: string | undefined;
  /** The HTTP status it was answered with. */
  status: number;
}

export interface FakeOpenAi {
  /** Base URL for the SDK, ending in `/v1`. */
  baseUrl: string;
  requests: RecordedRequest[];
  setReply(reply: (body: FakeChatRequest) => string): void;
  setUsage(usage: FakeUsage | null | undefined): void;
  /** Answer the next `count` requests with HTTP 500. */
  failNext(count: number): void;
  /** Every embeddings request, in arrival order (not in `requests`). */
  embeddingRequests: RecordedEmbeddingRequest[];
  /** Answer the next `count` embedding requests with HTTP 500. */
  failNextEmbeddings(count: number): void;
  /** Resolves with the outcome of the `index`-th recorded request once it has ended. */
  settled(index: number): Promise<Exclude<FakeOutcome, 'pending'>>;
  close(): Promise<void>;
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  let reply = options.reply ?? defaultReply;
  let usage = options.usage;
  let failures = options.failNext ?? 0;
  let embeddingFailures = options.failNextEmbeddings ?? 0;
  const embeddingRequests: RecordedEmbeddingRequest[] = [];
  const requests: RecordedRequest[] = [];
  const watchers = new Set<() => void>();
  const changed = () => {
    for (const watcher of watchers) watcher();
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(String(error), 'server_error'));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (req.method === 'POST' && req.url?.split('?')[0] === '/v1/embeddings') {
      handleEmbeddings(raw, req, res);
      return;
    }
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/chat/completions') {
      sendJson(res, 404, errorBody(`Unknown request URL: ${req.method} ${req.url}`, 'invalid_request_error'));
      return;
    }
    let body: FakeChatRequest;
    try {
      body = JSON.parse(raw) as FakeChatRequest;
    } catch {
      sendJson(res, 400, errorBody('We could not parse the JSON body of your request.', 'invalid_request_error'));
      return;
    }
    const record: RecordedRequest = { body, authorization: req.headers.authorization, outcome: 'pending' };
    requests.push(record);
    const settle = (outcome: Exclude<FakeOutcome, 'pending'>) => {
      if (record.outcome !== 'pending') return;
      record.outcome = outcome;
      changed();
    };
    res.on('close', () => settle(res.writableFinished ? 'completed' : 'client_closed'));
    changed();

    if (options.headersDelayMs) await delay(options.headersDelayMs);
    if (res.destroyed) return;
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      settle('failed');
      sendJson(res, 401, errorBody('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'));
      return;
    }
    if (failures > 0) {
      failures -= 1;
      settle('failed');
      const headers: Record<string, string> =
        options.retryAfterMs === undefined ? {} : { 'retry-after-ms': String(options.retryAfterMs) };
      sendJson(res, 500, errorBody('The server had an error while processing your request.', 'server_error'), headers);
      return;
    }
    if (typeof body.model !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0) {
      settle('failed');
      sendJson(res, 400, errorBody("'model' and a non-empty 'messages' are required.", 'invalid_request_error'));
      return;
    }

    const text = reply(body);
    const chunks = text.match(/\S+\s*|\s+/g) ?? [];
    const reported = usage === undefined ? defaultUsage(body, chunks.length) : usage;
    const id = `chatcmpl-fake${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const usageJson =
      reported === null ? undefined : { ...reported, total_tokens: reported.prompt_tokens + reported.completion_tokens };

    if (!body.stream) {
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        system_fingerprint: 'fp_fake',
        choices: [
          { index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' },
        ],
        ...(usageJson ? { usage: usageJson } : {}),
      });
      return;
    }

    const includeUsage = body.stream_options?.include_usage === true && usageJson !== undefined;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      system_fingerprint: 'fp_fake',
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    });
    const choice = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
      index: 0,
      delta,
      logprobs: null,
      finish_reason: finishReason,
    });
    const events: unknown[] = [
      chunk([choice({ role: 'assistant', content: '', refusal: null })]),
      ...chunks.map((content) => chunk([choice({ content })])),
      chunk([choice({}, 'stop')]),
      ...(includeUsage ? [chunk([], { usage: usageJson })] : []),
    ];

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    // Node holds the headers back until the first write; a real server sends them before the first token.
    res.flushHeaders();
    const cut = options.endStreamAfter === undefined ? events.length : 1 + options.endStreamAfter;
    for (const event of events.slice(0, cut)) {
      if (options.chunkDelayMs) await delay(options.chunkDelayMs);
      if (res.destroyed) return;
      res.write(`data: ${JSON.stringify(event)}\n\n`);
    }
    res.end(cut < events.length ? undefined : 'data: [DONE]\n\n');
  }

  function handleEmbeddings(raw: string, req: IncomingMessage, res: ServerResponse): void {
    let body: RecordedEmbeddingRequest['body'];
    try {
      body = JSON.parse(raw) as RecordedEmbeddingRequest['body'];
    } catch {
      sendJson(res, 400, errorBody('We could not parse the JSON body of your request.', 'invalid_request_error'));
      return;
    }
    const record: RecordedEmbeddingRequest = { body, authorization: req.headers.authorization, status: 200 };
    embeddingRequests.push(record);
    const fail = (status: number, error: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      sendJson(res, status, error, headers);
    };
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      fail(401, errorBody('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'));
      return;
    }
    if (embeddingFailures > 0) {
      embeddingFailures -= 1;
      const headers: Record<string, string> =
        options.retryAfterMs === undefined ? {} : { 'retry-after-ms': String(options.retryAfterMs) };
      fail(500, errorBody('The server had an error while processing your request.', 'server_error'), headers);
      return;
    }
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    if (
      typeof body.model !== 'string' ||
      !Array.isArray(inputs) ||
      inputs.length === 0 ||
      inputs.length > 2048 ||
      inputs.some((input) => typeof input !== 'string' || input === '')
    ) {
      fail(400, errorBody("'model' and an 'input' of 1 to 2048 non-empty strings are required.", 'invalid_request_error'));
      return;
    }
    const dimensions = body.dimensions ?? (body.model === 'text-embedding-3-large' ? 3072 : 1536);
    const base64 = body.encoding_format === 'base64';
    sendJson(res, 200, {
      object: 'list',
      data: inputs.map((input, index) => {
        const vector = hashEmbedding(input, dimensions);
        return {
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        };
      }),
      model: body.model,
      usage: (() => {
        const tokens = inputs.reduce((sum, input) => sum + input.split(/\s+/).filter(Boolean).length, 0);
        return { prompt_tokens: tokens, total_tokens: tokens };
      })(),
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    setReply(next) {
      reply = next;
    },
    setUsage(next) {
      usage = next;
    },
    failNext(count) {
      failures = count;
    },
    embeddingRequests,
    failNextEmbeddings(count) {
      embeddingFailures = count;
    },
    settled(index) {
      return new Promise((resolve) => {
        const check = () => {
          const outcome = requests[index]?.outcome;
          if (outcome === undefined || outcome === 'pending') return;
          watchers.delete(check);
          resolve(outcome);
        };
        watchers.add(check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function defaultReply(body: FakeChatRequest): string {
  const lastUser = body.messages.findLast((message) => message.role === 'user');
  return `Fake reply to: ${typeof lastUser?.content === 'string' ? lastUser.content : ''}`;
}

function defaultUsage(body: FakeChatRequest, completionChunks: number): FakeUsage {
  const words = body.messages
    .map((message) => (typeof message.content === 'string' ? message.content.split(/\s+/).filter(Boolean).length : 0))
    .reduce((sum, count) => sum + count, 0);
  return { prompt_tokens: words, completion_tokens: completionChunks };
}

function errorBody(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
