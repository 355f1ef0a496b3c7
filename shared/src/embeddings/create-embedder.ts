/** `createEmbedder(config)`: OpenAI's embeddings when OPENAI_API_KEY is set, the local hashing embedder otherwise. */
import type { Config } from '../config/config.ts';
import type { Embedder } from './embedder.ts';
import { LocalEmbedder } from './local-embedder.ts';
import { OpenAiEmbedder } from './openai-embedder.ts';

export function createEmbedder(
  config: Pick<Config, 'OPENAI_API_KEY' | 'OPENAI_BASE_URL' | 'EMBEDDING_MODEL' | 'EMBEDDING_DIMENSIONS'>,
): Embedder {
  if (config.OPENAI_API_KEY) {
    return new OpenAiEmbedder({ apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL, model: config.EMBEDDING_MODEL });
  }
  return new LocalEmbedder({ dimensions: config.EMBEDDING_DIMENSIONS });
}
