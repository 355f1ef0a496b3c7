/**
 * `npm run seed`: migrates DATABASE_URL to the latest schema (creating the database if needed) and inserts
 * the demo users, clones and documents that are missing. Safe to run any number of times.
 */
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase, ensureDatabaseExists } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { DEMO_IDS, seedDemoData } from './lib/seed-demo-data.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { embedMissingChunks } from './lib/embed-missing-chunks.ts';

const config = loadConfigOrExit();
await ensureDatabaseExists(config.DATABASE_URL);
const db = createDatabase(config.DATABASE_URL, { max: 1, applicationName: 'tollgate-seed' });
try {
  await migrateToLatest(db);
  await seedDemoData(db);
  // the demo chunks come as text: embedded with the configured embedder so retrieval finds them
  await embedMissingChunks(db, createEmbedder(config));
  console.log('seeded demo data:', JSON.stringify(DEMO_IDS, null, 2));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await db.destroy();
}

