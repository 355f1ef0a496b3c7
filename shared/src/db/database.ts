/**
 * Opens the Tollgate database (kysely over a pg Pool) and creates it when it does not exist yet.
 * `date` columns are read as 'YYYY-MM-DD' strings (as schema.ts declares them), not as local-time Dates;
 * numeric and bigint stay strings (pg's defaults).
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { CustomTypesConfig } from 'pg';
import type { Database } from './schema.ts';

const DATE_OID = 1082;

const types: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === DATE_OID && format !== 'binary'
      ? (value: string) => value
      : pg.types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

export interface DatabaseOptions {
  /** Largest number of pooled connections. Default 10. */
  max?: number;
  /** Reported in pg_stat_activity. Default 'tollgate'. */
  applicationName?: string;
  /**
   * Told when an idle pooled connection fails (Postgres restarted, connection terminated). The pool drops
   * that connection and opens a new one when needed. Default: ignored — without a listener the error
   * would crash the process.
   */
  onIdleError?: (error: Error) => void;
}

/** A Kysely instance over its own pg Pool; `db.destroy()` closes the pool. */
export function createDatabase(url: string, options: DatabaseOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'tollgate',
    types,
    // a connection attempt Postgres never answers (it is restarting) fails instead of holding a pool slot forever
    connectionTimeoutMillis: 10_000,
  });
  pool.on('error', (error) => options.onIdleError?.(error));
  // A connection that dies while checked out (between a transaction's statements, when Postgres restarts) makes
  // its Client emit 'error' with no pool listener attached, which would crash the process; the statement that
  // uses it fails on its own and the pool discards the client.
  pool.on('connect', (client) => client.on('error', (error) => options.onIdleError?.(error)));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** The database name of a postgres:// URL. */
export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new RangeError(`no database name in ${redactUrl(url)}`);
  return name;
}

/** The same server and credentials, pointed at another database (by default the `postgres` maintenance db). */
export function withDatabase(url: string, name = 'postgres'): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(name)}`;
  return parsed.toString();
}

/** Quotes an SQL identifier (a database name in CREATE/DROP DATABASE, which take no parameters). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const DUPLICATE_DATABASE = '42P04';
const UNIQUE_VIOLATION = '23505';

/**
 * Creates the database of `url` when it is missing. Two processes racing to create it both succeed:
 * the loser's "already exists" (42P04, or 23505 on pg_database's unique index) is not an error.
 * Returns true when this call created it.
 */
export async function ensureDatabaseExists(url: string): Promise<boolean> {
  const name = databaseName(url);
  const client = new pg.Client({ connectionString: withDatabase(url), application_name: 'tollgate-setup' });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
      return true;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === DUPLICATE_DATABASE || code === UNIQUE_VIOLATION) return false;
      throw error;
    }
  } finally {
    await client.end();
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
