/**
 * `npm run seed`: migrates DATABASE_URL to the latest schema (creating the database if needed) and inserts
 * the demo users, clones and documents that are missing. Safe to run any number of times.
 */
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase, ensureDatabaseExists } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { DEMO_IDS, seedDemoData } from '#shared/db/seed.ts';
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { embeddingColumnType, embeddingLiteral } from '#shared/documents/embedding-column.ts';

const config = loadConfigOrExit();
await ensureDatabaseExists(config.DATABASE_URL);
const db = createDatabase(config.DATABASE_URL, { max: 1, applicationName: 'tollgate-seed' });
try {
  await migrateToLatest(db);
  await seedDemoData(db);
  await embedSeededChunks(db);
  console.log('seeded demo data:', JSON.stringify(DEMO_IDS, null, 2));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await db.destroy();
}

/** The demo chunks come as text: embed them with the configured embedder so retrieval finds them. */
async function embedSeededChunks(db: Kysely<Database>): Promise<void> {
  const embedder = createEmbedder(config);
  const chunks = await db.selectFrom('document_chunks').select(['id', 'document_id', 'content']).where('embedding', 'is', null).execute();
  if (chunks.length === 0) return;
  const vectors = await embedder.embed(chunks.map((c) => c.content));
  const column = await embeddingColumnType(db);
  for (const [i, chunk] of chunks.entries()) {
    await db.updateTable('document_chunks').set({ embedding: embeddingLiteral(column, vectors[i]!) }).where('id', '=', chunk.id).execute();
  }
  const documentIds = [...new Set(chunks.map((c) => c.document_id))];
  await db
    .updateTable('documents')
    .set({ embedding_model: embedder.model, embedding_dimensions: vectors[0]!.length })
    .where('id', 'in', documentIds)
    .execute();
}
