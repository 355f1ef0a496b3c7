/**
 * `retrievePassages(db, query)`: the `k` chunks of a clone's knowledge base closest to a question's embedding, by
 * exact cosine similarity — only chunks of the clone's completed documents embedded with the same model and length.
 * Vectors are stored L2-normalised, so cosine is a dot product: over `real[]` it is summed in SQL; where the column
 * is pgvector's `vector` it is `1 - (embedding <=> query)` (tested on PGlite with pgvector, tests/documents/pgvector.test.ts;
 * the CI Postgres has no pgvector). Both are exact scans of the clone's chunks: no ANN index, none needed at this size.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { l2Normalise } from '#shared/embeddings/embedder.ts';
import { embeddingColumnType, embeddingLiteral } from '#shared/documents/embedding-column.ts';

export interface PassageQuery {
  cloneId: string;
  /** The question's embedding, from the same embedder as the documents' (normalised here). */
  embedding: readonly number[];
  /** `embedder.model`: chunks of other models are not compared. */
  model: string;
  /** `embedder.dimensions`; must equal `embedding.length`. */
  dimensions: number;
  /** How many passages at most (RAG_TOP_K). */
  k: number;
}

export interface Passage {
  documentId: string;
  title: string;
  chunkIndex: number;
  content: string;
  /** Cosine similarity, -1..1, higher is closer. */
  score: number;
  /** 1-based page of a PDF chunk. */
  page?: number;
}

interface PassageRow {
  document_id: string;
  title: string;
  chunk_index: number;
  content: string;
  page: number | null;
  score: number;
}

export async function retrievePassages(db: Kysely<Database>, query: PassageQuery): Promise<Passage[]> {
  const { cloneId, model, dimensions, k } = query;
  if (query.embedding.length !== dimensions) {
    throw new RangeError(`the embedding has ${query.embedding.length} numbers, not ${dimensions}`);
  }
  if (!Number.isInteger(k) || k < 1 || dimensions < 1) return [];
  const columnType = await embeddingColumnType(db);
  const literal = embeddingLiteral(columnType, l2Normalise(query.embedding));

  // Both forms order by the score alone (ties by position, for stable answers); the WHERE keeps every compared
  // vector the query's length, which pgvector's operator requires.
  // pgvector: the distance is written as the HNSW indexes of migration 0008 are (over embedding::vector(N)), so the
  // planner can use one for the lengths they cover
  const typed = sql`vector(${sql.lit(dimensions)})`;
  const distance = sql`(c.embedding::${typed}) <=> ${literal}::${typed}`;
  const score =
    columnType === 'vector'
      ? sql<number>`(1 - (${distance}))::float8`
      : sql<number>`(SELECT sum(a::float8 * b::float8) FROM unnest(c.embedding, ${literal}::real[]) AS t(a, b))`;
  const order = columnType === 'vector' ? distance : sql`score DESC NULLS LAST`;
  const sameLength = columnType === 'vector' ? sql`AND vector_dims(c.embedding) = ${sql.lit(dimensions)}` : sql``;

  const { rows } = await sql<PassageRow>`
    SELECT c.document_id, d.title, c.chunk_index, c.content, (c.doc_metadata ->> 'page')::int AS page, ${score} AS score
    FROM document_chunks c
    JOIN documents d ON d.id = c.document_id
    WHERE d.clone_id = ${cloneId}
      AND d.processing_status = 'completed'
      AND d.embedding_model = ${model}
      AND d.embedding_dimensions = ${dimensions}
      AND c.embedding IS NOT NULL
      ${sameLength}
    ORDER BY ${order}, c.document_id, c.chunk_index
    LIMIT ${k}
  `.execute(db);

  return rows.map((row) => ({
    documentId: row.document_id,
    title: row.title,
    chunkIndex: row.chunk_index,
    content: row.content,
    score: Number(row.score),
    ...(row.page === null ? {} : { page: row.page }),
  }));
}
