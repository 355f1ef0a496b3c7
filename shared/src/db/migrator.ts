/**
 * Runs the schema migrations, which are listed here in code (no directory scanning: they ship with the
 * bundle and their order is reviewed). Kysely's Migrator runs each in a transaction under a lock table,
 * so two processes migrating at once do not collide.
 */
import type { Kysely } from 'kysely';
import { Migrator, NO_MIGRATIONS, type Migration, type MigrationResult } from 'kysely/migration';
import * as productSchema from './migrations/0001-product-schema.ts';
import * as tollgateLedger from './migrations/0002-tollgate-ledger.ts';
import * as settlementCreditsVersion from './migrations/0003-settlement-credits-version.ts';
import * as sessionCheckpoints from './migrations/0004-session-checkpoints.ts';
import * as auditTrail from './migrations/0005-audit-trail.ts';
import * as ledgerQueries from './migrations/0006-ledger-queries.ts';
import * as documentIngestion from './migrations/0007-document-ingestion.ts';
import * as embeddingHnsw from './migrations/0008-embedding-hnsw.ts';
import * as sessionHotUpdates from './migrations/0009-session-hot-updates.ts';
import * as supabaseAuthCompat from './migrations/0010-supabase-auth-compat.ts';
import * as rowLevelSecurity from './migrations/0011-row-level-security.ts';
import * as peopleAndDeletion from './migrations/0012-people-and-deletion.ts';
import * as moneyMovements from './migrations/0013-money-movements.ts';
import * as subscriptions from './migrations/0014-subscriptions.ts';
import * as creatorPayouts from './migrations/0015-creator-payouts.ts';
import * as activeRoomSessions from './migrations/0016-active-room-sessions.ts';
import type { Database } from './schema.ts';

/** Every migration by name; names sort in the order they run. */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '0001-product-schema': productSchema,
  '0002-tollgate-ledger': tollgateLedger,
  '0003-settlement-credits-version': settlementCreditsVersion,
  '0004-session-checkpoints': sessionCheckpoints,
  '0005-audit-trail': auditTrail,
  '0006-ledger-queries': ledgerQueries,
  '0007-document-ingestion': documentIngestion,
  '0008-embedding-hnsw': embeddingHnsw,
  '0009-session-hot-updates': sessionHotUpdates,
  '0010-supabase-auth-compat': supabaseAuthCompat,
  '0011-row-level-security': rowLevelSecurity,
  '0012-people-and-deletion': peopleAndDeletion,
  '0013-money-movements': moneyMovements,
  '0014-subscriptions': subscriptions,
  '0015-creator-payouts': creatorPayouts,
  '0016-active-room-sessions': activeRoomSessions,
});

class MigrationError extends Error {
  override readonly name = 'MigrationError';
  readonly code = 'migration_failed';
  constructor(
    message: string,
    readonly results: readonly MigrationResult[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

function createMigrator(db: Kysely<Database>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => ({ ...migrations }) } });
}

function unwrap(results: readonly MigrationResult[] | undefined, error: unknown): MigrationResult[] {
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    const reason = error instanceof Error ? error.message : String(error);
    throw new MigrationError(
      `migration ${failed ? `${failed.migrationName} ` : ''}failed: ${reason}`,
      results ?? [],
      { cause: error },
    );
  }
  return [...(results ?? [])];
}

/** Applies every pending migration; returns what ran (empty when already up to date). */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationResult[]> {
  const { results, error } = await createMigrator(db).migrateToLatest();
  return unwrap(results, error);
}

/** Reverts the last `steps` migrations, or all of them with 'all'. */
export async function migrateDown(db: Kysely<Database>, steps: number | 'all'): Promise<MigrationResult[]> {
  const migrator = createMigrator(db);
  if (steps === 'all') {
    const { results, error } = await migrator.migrateTo(NO_MIGRATIONS);
    return unwrap(results, error);
  }
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`steps must be a non-negative integer: ${steps}`);
  const done: MigrationResult[] = [];
  for (let i = 0; i < steps; i++) {
    const { results, error } = await migrator.migrateDown();
    const ran = unwrap(results, error);
    if (ran.length === 0) break;
    done.push(...ran);
  }
  return done;
}
