/**
 * Approximate nearest-neighbour indexes for retrieval where pgvector is installed: one HNSW index (cosine) per
 * embedding length Tollgate produces (256 for the local embedder, 1536 for text-embedding-3-small), as expression
 * indexes over `embedding::vector(N)`, since the column holds vectors of whichever embedder is configured. Without
 * pgvector (embedding is real[]) there is nothing to index: retrieval is an exact scan of the clone's chunks.
 */
import { sql, type Kysely } from 'kysely';

const HNSW_DIMENSIONS = [256, 1536] as const;

async function embeddingIsVector(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ type: string }>`
    SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
    WHERE attrelid = 'document_chunks'::regclass AND attname = 'embedding'
  `.execute(db);
  return rows[0]?.type.startsWith('vector') ?? false;
}

export async function up(db: Kysely<any>): Promise<void> {
  if (!(await embeddingIsVector(db))) return;
  for (const n of HNSW_DIMENSIONS) {
    await sql`
      CREATE INDEX ${sql.id(`document_chunks_embedding_hnsw_${n}`)} ON document_chunks
      USING hnsw ((embedding::vector(${sql.lit(n)})) vector_cosine_ops) WHERE vector_dims(embedding) = ${sql.lit(n)}
    `.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const n of HNSW_DIMENSIONS) {
    await sql`DROP INDEX IF EXISTS ${sql.id(`document_chunks_embedding_hnsw_${n}`)}`.execute(db);
  }
}
