/**
 * Finds the passages of a clone's knowledge base that match a question: the question is embedded with the same
 * embedder the documents were (so only comparable vectors meet) and the top RAG_TOP_K chunks of that clone's
 * completed documents are returned, best first.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import type { Embedder } from '#shared/embeddings/embedder.ts';
import { retrievePassages } from '#shared/documents/retrieve-passages.ts';
import type { Passage } from './reply-generator.ts';

export function knowledgeRetriever(db: Kysely<Database>, embedder: Embedder, topK: number) {
  return async (cloneId: string, question: string, signal: AbortSignal): Promise<Passage[]> => {
    const [embedding] = await embedder.embed([question], signal);
    if (!embedding) return [];
    const found = await retrievePassages(db, { cloneId, embedding, model: embedder.model, dimensions: embedding.length, k: topK });
    return found.map(({ documentId, title, chunkIndex, content }) => ({ documentId, title, chunkIndex, content }));
  };
}
