/**
 * Document ingestion (issue 5): why a document failed, which embedding model and dimension its chunks were made
 * with (so chunks of the local hashing embedder and of OpenAI are never compared with each other), and the
 * citations of AI messages. The ingestion poller's scan of unfinished documents gets a small partial index.
 * The index on document_chunks (document_id, chunk_index) is 0001's unique constraint; it is only ensured here
 * (IF NOT EXISTS, under the constraint's own name) and left to 0001 on the way down.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('documents')
    .addColumn('failure_reason', 'text')
    .addColumn('embedding_model', 'text')
    .addColumn('embedding_dimensions', 'integer')
    .execute();
  await db.schema
    .alterTable('documents')
    .addCheckConstraint('documents_embedding_dimensions_check', sql`embedding_dimensions > 0`)
    .execute();
  // Null for user messages; an AI message's `[{ documentId, title, chunkIndex }]`.
  await db.schema.alterTable('messages').addColumn('citations', 'jsonb').execute();
  await sql`
    CREATE INDEX documents_unfinished_idx ON documents (updated_at)
    WHERE processing_status IN ('pending', 'processing')
  `.execute(db);
  await sql`
    CREATE UNIQUE INDEX IF NOT EXISTS document_chunks_document_id_chunk_index_key
    ON document_chunks (document_id, chunk_index)
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('documents_unfinished_idx').execute();
  await db.schema.alterTable('messages').dropColumn('citations').execute();
  await db.schema
    .alterTable('documents')
    .dropConstraint('documents_embedding_dimensions_check')
    .execute();
  await db.schema
    .alterTable('documents')
    .dropColumn('embedding_dimensions')
    .dropColumn('embedding_model')
    .dropColumn('failure_reason')
    .execute();
}
