/**
 * `npm run migrate`: creates the database of DATABASE_URL if missing and applies every pending migration.
 * `npm run migrate -- --down` reverts all migrations (drops Tollgate's tables and their data).
 */
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase, ensureDatabaseExists, redactUrl } from '#shared/db/database.ts';
import { migrateDown, migrateToLatest } from '#shared/db/migrator.ts';

const config = loadConfigOrExit();
const down = process.argv.includes('--down');

if (!down && (await ensureDatabaseExists(config.DATABASE_URL))) {
  console.log(`created database ${redactUrl(config.DATABASE_URL)}`);
}
const db = createDatabase(config.DATABASE_URL, { max: 1, applicationName: 'tollgate-migrate' });
try {
  const results = down ? await migrateDown(db, 'all') : await migrateToLatest(db);
  for (const r of results) console.log(`${r.direction.toLowerCase()} ${r.migrationName}: ${r.status}`);
  if (results.length === 0) console.log(down ? 'nothing to revert' : 'already up to date');
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
