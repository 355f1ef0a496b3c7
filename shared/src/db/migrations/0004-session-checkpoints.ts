/**
 * Session checkpoints: the billed state (active ms, cost, message count) of an open session at an instant,
 * written every CHECKPOINT_MS and at every state change. If the live state is lost, the reconciler ends and
 * settles the session at its last checkpoint — never above what the user had used.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('sessions')
    .addColumn('checkpoint_at', 'timestamptz')
    .addColumn('checkpoint_cost', sql`numeric(14,4)`, (c) => c.notNull().defaultTo(0))
    .execute();
  // the reconciler's question: which sessions are not settled yet
  await sql`CREATE INDEX sessions_unsettled_idx ON sessions (updated_at) WHERE settled_at IS NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS sessions_unsettled_idx`.execute(db);
  await db.schema.alterTable('sessions').dropColumn('checkpoint_at').dropColumn('checkpoint_cost').execute();
}
