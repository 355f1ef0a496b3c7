/**
 * A throwaway, fully migrated database per test file: `tollgate_test_<pid>_<random>` on the server of
 * TEST_DATABASE_URL, dropped (WITH (FORCE)) by `drop()`. Creating and migrating one takes ~0.1 s, so each
 * database is migrated directly rather than copied from a template (no template locking to get wrong).
 * A process killed before `drop()` leaves its database behind; the name carries the pid to find it. (No
 * automatic sweep: other sandboxes share this server and their pids are not visible from here.)
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Kysely } from 'kysely';
import { createDatabase, quoteIdentifier, withDatabase } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import type { Database } from '#shared/db/schema.ts';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'tollgate_test_';

/** The server tests use (any database on it; only its host and credentials matter). Tests may read env. */
export function testDatabaseBaseUrl(): string {
  return process.env.TEST_DATABASE_URL || DEFAULT_URL;
}

export interface TestDatabase {
  /** Connection URL of the new database. */
  url: string;
  db: Kysely<Database>;
  /** Closes `db` and drops the database, even with other connections still open. */
  drop(): Promise<void>;
}

async function withMaintenanceClient<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(testDatabaseBaseUrl()), application_name: 'tollgate-tests' });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabaseOptions {
  /** Runs on the empty database before it is migrated (e.g. to give it what a Supabase project has). */
  beforeMigrate?: (db: Kysely<Database>) => Promise<void>;
}

export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = `${PREFIX}${process.pid}_${randomBytes(6).toString('hex')}`;
  await withMaintenanceClient((client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));
  const url = withDatabase(testDatabaseBaseUrl(), name);
  const db = createDatabase(url, { max: 20, applicationName: 'tollgate-tests' });
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await db.destroy();
    await withMaintenanceClient((client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`));
  };
  try {
    await options.beforeMigrate?.(db);
    await migrateToLatest(db);
  } catch (error) {
    await drop();
    throw error;
  }
  return { url, db, drop };
}
