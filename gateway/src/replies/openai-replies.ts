/**
 * `OpenAiReplyGenerator`: clone replies from OpenAI's chat completions API (or any server speaking it),
 * streamed through the official SDK.
 */
import OpenAI, { APIConnectionTimeoutError } from 'openai';
import { toStorableText } from '#shared/contract/storable-text.ts';
import { countPromptTokens, countTokens } from './count-tokens.ts';
import type { Reply, ReplyGenerator, ReplyRequest } from './reply-generator.ts';
import { buildChatMessages } from './system-prompt.ts';

export interface OpenAiReplyGeneratorOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** OpenAI-compatible endpoint ending in `/v1`; default the SDK's, `https://api.openai.com/v1`. */
  baseURL?: string | undefined;
  /** Chat model, e.g. `gpt-4o-mini`. */
  model: string;
  /** Retries of a failed request (connection error, 408/409/429/5xx) before the error surfaces; default 2. */
  maxRetries?: number;
  /**
   * Milliseconds to wait for the response to start, and then for each next chunk of the stream; default 60 000.
   * (The SDK's own timeout ends once the headers arrive, so a stream that stalls mid-reply is guarded here.)
   */
  timeoutMs?: number;
}

export class OpenAiReplyGenerator implements ReplyGenerator {
  readonly #client: OpenAI;
  readonly #model: string;
  readonly #timeoutMs: number;

  constructor(options: OpenAiReplyGeneratorOptions) {
    this.#model = options.model;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    // Every setting is given explicitly (null where unused): the SDK would otherwise fill the gaps from
    // process.env, and only the shared config reads the environment.
    this.#client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL ?? null,
      organization: null,
      project: null,
      webhookSecret: null,
      maxRetries: options.maxRetries ?? 2,
      timeout: this.#timeoutMs,
    });
  }

  async generate(request: ReplyRequest, onDelta: (delta: string) => void): Promise<Reply> {
    const messages = buildChatMessages(request);
    const stall = new AbortController();
    const signal = request.signal ? AbortSignal.any([request.signal, stall.signal]) : stall.signal;
    let timer: NodeJS.Timeout | undefined;
    const armStallTimer = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(), this.#timeoutMs);
    };

    // the model may send what Postgres cannot store (NUL, a lone surrogate): the user sees what is stored
    const storable = new StorableStream();
    let content = '';
    let totalTokens: number | undefined;
    let finished = false;
    try {
      const stream = await this.#client.chat.completions.create(
        { model: this.#model, messages, stream: true, stream_options: { include_usage: true } },
        { signal },
      );
      armStallTimer();
      for await (const chunk of stream) {
        // Whatever the SDK may still hold buffered, nothing reaches onDelta after an abort.
        if (signal.aborted) break;
        armStallTimer();
        if (chunk.usage) totalTokens = chunk.usage.total_tokens;
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.finish_reason) finished = true;
        const delta = choice.delta?.content;
        if (delta) {
          const text = storable.push(delta);
          if (text) {
            content += text;
            onDelta(text);
          }
        }
      }
      const rest = storable.end();
      if (rest) {
        content += rest;
        onDelta(rest);
      }
    } catch (error) {
      request.signal?.throwIfAborted();
      if (stall.signal.aborted) throw stalledError(this.#timeoutMs);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    // The SDK ends the iteration quietly, rather than throwing, when the signal aborts mid-stream.
    request.signal?.throwIfAborted();
    if (stall.signal.aborted) throw stalledError(this.#timeoutMs);
    if (!finished) throw new Error('the model server closed the reply stream before it finished');

    return { content, tokensUsed: totalTokens ?? countPromptTokens(messages) + countTokens(content) };
  }
}

/**
 * Deltas made storable (`toStorableText`) as they stream. A high surrogate ending a delta is held back for the next
 * one: the pair may have been split between two chunks, and only a surrogate left alone becomes U+FFFD.
 */
class StorableStream {
  #held = '';

  push(delta: string): string {
    let text = this.#held + delta;
    this.#held = '';
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.#held = text.slice(-1);
      text = text.slice(0, -1);
    }
    return toStorableText(text);
  }

  end(): string {
    const rest = toStorableText(this.#held);
    this.#held = '';
    return rest;
  }
}

function stalledError(timeoutMs: number): APIConnectionTimeoutError {
  return new APIConnectionTimeoutError({ message: `the reply stream sent nothing for ${timeoutMs} ms` });
}
