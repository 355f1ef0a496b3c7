/**
 * Embeds chunks that were written as text only (the demo seed's), and records the model on their documents, so
 * retrieval finds them.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import type { Embedder } from '#shared/embeddings/embedder.ts';
import { embeddingColumnType, embeddingLiteral } from '#shared/documents/embedding-column.ts';

export async function embedMissingChunks(db: Kysely<Database>, embedder: Embedder): Promise<number> {
  const chunks = await db.selectFrom('document_chunks').select(['id', 'document_id', 'content']).where('embedding', 'is', null).execute();
  if (chunks.length === 0) return 0;
  const vectors = await embedder.embed(chunks.map((c) => c.content));
  const column = await embeddingColumnType(db);
  for (const [i, chunk] of chunks.entries()) {
    await db.updateTable('document_chunks').set({ embedding: embeddingLiteral(column, vectors[i]!) }).where('id', '=', chunk.id).execute();
  }
  await db
    .updateTable('documents')
    .set({ embedding_model: embedder.model, embedding_dimensions: vectors[0]!.length })
    .where('id', 'in', [...new Set(chunks.map((c) => c.document_id))])
    .execute();
  return chunks.length;
}
