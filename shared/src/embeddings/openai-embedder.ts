/**
 * `OpenAiEmbedder`: embeddings from OpenAI's `/v1/embeddings` (or any server speaking it) through the official SDK,
 * at most 96 inputs per request. The SDK retries connection errors, 408/409/429 and 5xx with exponential backoff
 * (honouring `retry-after`); what still fails becomes an `EmbeddingError`, permanent for the provider's refusals.
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import { l2Normalise, type Embedder } from './embedder.ts';
import { EmbeddingError } from './embedding-error.ts';

/** Inputs per request: far below the API's 2048, so one request stays small and a retry repeats little. */
export const EMBEDDING_BATCH_SIZE = 96;

/** Native vector length of OpenAI's embedding models. */
const KNOWN_DIMENSIONS: Readonly<Record<string, number>> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

export interface OpenAiEmbedderOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** OpenAI-compatible endpoint ending in `/v1`; default the SDK's, `https://api.openai.com/v1`. */
  baseURL?: string | undefined;
  /** Embedding model (EMBEDDING_MODEL), e.g. `text-embedding-3-small`. */
  model: string;
  /** Retries of a failed request (connection error, 408/409/429/5xx), with backoff, before it fails; default 3. */
  maxRetries?: number;
  /** Milliseconds one request may take; default 60 000. */
  timeoutMs?: number;
}

export class OpenAiEmbedder implements Embedder {
  readonly model: string;
  readonly #client: OpenAI;
  #dimensions: number;

  constructor(options: OpenAiEmbedderOptions) {
    this.model = options.model;
    this.#dimensions = KNOWN_DIMENSIONS[options.model] ?? 0;
    // Every setting is given explicitly (null where unused): the SDK would otherwise fill the gaps from
    // process.env, and only the shared config reads the environment.
    this.#client = new OpenAI({
      apiKey: options.apiKey,
      adminAPIKey: null,
      baseURL: options.baseURL ?? null,
      organization: null,
      project: null,
      webhookSecret: null,
      maxRetries: options.maxRetries ?? 3,
      timeout: options.timeoutMs ?? 60_000,
      logLevel: 'warn',
    });
  }

  /** The model's known length, or the length of its first answer; 0 before that for a model not in the table. */
  get dimensions(): number {
    return this.#dimensions;
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += EMBEDDING_BATCH_SIZE) {
      const batch = texts.slice(start, start + EMBEDDING_BATCH_SIZE);
      vectors.push(...(await this.#embedBatch(batch, signal)));
    }
    return vectors;
  }

  async #embedBatch(input: string[], signal: AbortSignal | undefined): Promise<number[][]> {
    let response: OpenAI.CreateEmbeddingResponse;
    try {
      response = await this.#client.embeddings.create({ model: this.model, input }, signal ? { signal } : {});
    } catch (error) {
      throw toEmbeddingError(error, this.model);
    }
    if (response.data.length !== input.length) {
      throw new EmbeddingError(
        'invalid_response',
        `${this.model} returned ${response.data.length} embeddings for ${input.length} inputs`,
        true,
      );
    }
    const vectors = new Array<number[]>(input.length);
    for (const item of response.data) {
      // The SDK decodes the base64 wire format into a Float32Array.
      const vector = l2Normalise(item.embedding);
      if (this.#dimensions === 0) this.#dimensions = vector.length;
      if (vector.length !== this.#dimensions || vectors[item.index] !== undefined || item.index >= input.length) {
        throw new EmbeddingError(
          'invalid_response',
          `${this.model} returned a vector of length ${vector.length} at index ${item.index} (expected ${this.#dimensions})`,
          true,
        );
      }
      vectors[item.index] = vector;
    }
    return vectors;
  }
}

function toEmbeddingError(error: unknown, model: string): unknown {
  if (error instanceof APIUserAbortError) return error;
  if (error instanceof APIConnectionError) {
    return new EmbeddingError('provider_unavailable', `embedding provider unreachable: ${error.message}`, false, { cause: error });
  }
  if (error instanceof APIError) {
    const status = error.status;
    const transient = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
    return transient
      ? new EmbeddingError('provider_unavailable', `embedding provider failed (${status ?? 'no status'}): ${error.message}`, false, { cause: error })
      : new EmbeddingError('provider_rejected', `embedding provider refused ${model} (${status}): ${error.message}`, true, { cause: error });
  }
  return error;
}
