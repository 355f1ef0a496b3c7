/**
 * The type of `document_chunks.embedding`, which migration 0001 made pgvector's `vector` where the extension could
 * be created and `real[]` elsewhere, and the literal each takes: '[1,2,3]' for vector, '{1,2,3}' for real[].
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

export type EmbeddingColumnType = 'vector' | 'real[]';

// Looked up once per database handle; a failed look-up is forgotten so the next call asks again.
const known = new WeakMap<Kysely<Database>, Promise<EmbeddingColumnType>>();

export function embeddingColumnType(db: Kysely<Database>): Promise<EmbeddingColumnType> {
  let type = known.get(db);
  if (!type) {
    type = sql<{ type: string }>`
      SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = 'document_chunks'::regclass AND attname = 'embedding' AND NOT attisdropped
    `
      .execute(db)
      .then(({ rows }) => {
        const found = rows[0]?.type;
        if (found === undefined) throw new Error('document_chunks.embedding does not exist: is the database migrated?');
        // `vector` or `vector(1536)`; everything else is the real[] fallback.
        return found.startsWith('vector') ? 'vector' : 'real[]';
      });
    type.catch(() => known.delete(db));
    known.set(db, type);
  }
  return type;
}

/** `vector` as a literal of the column type; 9 significant digits round-trip a float4 exactly. */
export function embeddingLiteral(type: EmbeddingColumnType, vector: readonly number[]): string {
  const parts = vector.map((value) => {
    if (!Number.isFinite(value)) throw new RangeError(`an embedding holds ${value}`);
    return String(Number(value.toPrecision(9)));
  });
  return type === 'vector' ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
}
