/**
 * Finds the passages of a clone's knowledge base that match a question: the question is embedded with the same
 * embedder the documents were (so only comparable vectors meet) and the top RAG_TOP_K chunks of that clone's
 * completed documents are returned, best first.
 *
 * Most clones have no documents: whether a clone has any completed document of this embedder is remembered for
 * `documentsTtlMs`, and a clone without one costs neither an embedding nor a search. A document completed meanwhile
 * is used within that time.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import type { Embedder } from '#shared/embeddings/embedder.ts';
import { retrievePassages } from '#gateway/replies/retrieve-passages.ts';
import type { Passage } from './reply-generator.ts';

export interface KnowledgeRetrieverOptions {
  /** How long "this clone has (no) documents" is remembered, ms (default 10 000). */
  documentsTtlMs?: number;
  /** Most clones remembered (default 10 000). */
  maxClones?: number;
}

export function knowledgeRetriever(db: Kysely<Database>, embedder: Embedder, topK: number, options: KnowledgeRetrieverOptions = {}) {
  const ttlMs = options.documentsTtlMs ?? 10_000;
  const maxClones = options.maxClones ?? 10_000;
  const known = new Map<string, { until: number; has: Promise<boolean> }>();

  const hasDocuments = (cloneId: string): Promise<boolean> => {
    const now = Date.now();
    const cached = known.get(cloneId);
    if (cached && cached.until > now) return cached.has;
    const has = sql<{ found: number }>`
      SELECT 1 AS found FROM documents
      WHERE clone_id = ${cloneId} AND processing_status = 'completed' AND embedding_model = ${embedder.model}
      LIMIT 1
    `
      .execute(db)
      .then(({ rows }) => rows.length > 0);
    known.delete(cloneId);
    known.set(cloneId, { until: now + ttlMs, has });
    has.catch(() => {
      if (known.get(cloneId)?.has === has) known.delete(cloneId);
    });
    if (known.size > maxClones) known.delete(known.keys().next().value!);
    return has;
  };

  return async (cloneId: string, question: string, signal: AbortSignal): Promise<Passage[]> => {
    if (!(await hasDocuments(cloneId))) return [];
    const [embedding] = await embedder.embed([question], signal);
    if (!embedding) return [];
    const found = await retrievePassages(db, { cloneId, embedding, model: embedder.model, dimensions: embedding.length, k: topK });
    return found.map(({ documentId, title, chunkIndex, content }) => ({ documentId, title, chunkIndex, content }));
  };
}
