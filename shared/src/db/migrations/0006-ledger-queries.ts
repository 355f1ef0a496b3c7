/**
 * Indexes of the billing staff API (billing/src/ledger):
 * - every ledger entry of a session, settlement and adjustments alike, in order (session detail, CSV export,
 *   reconciliation, the refund limit of an adjustment) — the partial unique index of 0005 covers settlement rows only;
 * - a session's adjustments;
 * - the daily analytics by date alone (their primary keys lead with the user or the creator).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('ledger_entries_session_id_created_at_idx')
    .on('ledger_entries')
    .columns(['session_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('ledger_adjustments_session_id_created_at_idx')
    .on('ledger_adjustments')
    .columns(['session_id', 'created_at'])
    .execute();
  await db.schema.createIndex('user_analytics_date_idx').on('user_analytics').column('date').execute();
  await db.schema.createIndex('creator_analytics_date_idx').on('creator_analytics').column('date').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('creator_analytics_date_idx').execute();
  await db.schema.dropIndex('user_analytics_date_idx').execute();
  await db.schema.dropIndex('ledger_adjustments_session_id_created_at_idx').execute();
  await db.schema.dropIndex('ledger_entries_session_id_created_at_idx').execute();
}
