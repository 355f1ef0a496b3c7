/**
 * The audit trail billing staff rely on:
 * - `session_events`: every state change of a session (started, paused, resumed, ended, with its reason), with its
 *   instant and the active milliseconds so far — one row per state version, so a session's intervals, and so its
 *   time cost, can be recomputed;
 * - `ledger_adjustments`: compensating entries (refunds, corrections) by an admin, idempotent by a client key; their
 *   ledger rows have kind `adjustment` and sum to zero like every other transaction;
 * - settled money is append-only: ledger entries, adjustments and session events can be neither updated nor deleted.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE FUNCTION tollgate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$
  `.execute(db);

  await db.schema
    .createTable('session_events')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('restrict'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('active_ms', 'bigint', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('session_events_session_id_version_key', ['session_id', 'version'])
    .addCheckConstraint('session_events_kind_check', sql`kind IN ('started', 'paused', 'resumed', 'ended')`)
    .addCheckConstraint('session_events_active_ms_check', sql`active_ms >= 0`)
    .execute();

  await db.schema
    .createTable('ledger_adjustments')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
    /** What the request said, hashed: the same key with other parameters is refused. */
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('restrict'))
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('restrict'))
    .addColumn('creator_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('restrict'))
    /** Signed: positive gives credits back to the user (a refund), negative charges more (a correction). */
    .addColumn('amount', sql`numeric(14,4)`, (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('author_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('restrict'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('ledger_adjustments_amount_check', sql`amount <> 0`)
    .addCheckConstraint('ledger_adjustments_reason_check', sql`length(trim(reason)) > 0`)
    .execute();

  await db.schema
    .alterTable('ledger_entries')
    .addColumn('adjustment_id', 'uuid', (c) => c.references('ledger_adjustments.id').onDelete('restrict'))
    .execute();
  await db.schema.alterTable('ledger_entries').dropConstraint('ledger_entries_session_id_kind_key').execute();
  await sql`CREATE UNIQUE INDEX ledger_entries_session_id_kind_key ON ledger_entries (session_id, kind) WHERE adjustment_id IS NULL`.execute(db);
  await sql`CREATE UNIQUE INDEX ledger_entries_adjustment_account_key ON ledger_entries (adjustment_id, account_kind) WHERE adjustment_id IS NOT NULL`.execute(db);
  await db.schema.alterTable('ledger_entries').dropConstraint('ledger_entries_kind_check').execute();
  await db.schema.alterTable('ledger_entries').dropConstraint('ledger_entries_shape_check').execute();
  await db.schema
    .alterTable('ledger_entries')
    .addCheckConstraint('ledger_entries_kind_check', sql`kind IN ('session_charge', 'creator_earning', 'platform_fee', 'adjustment')`)
    .execute();
  await db.schema
    .alterTable('ledger_entries')
    .addCheckConstraint(
      'ledger_entries_shape_check',
      sql`(adjustment_id IS NULL AND (
            (kind = 'session_charge' AND account_kind = 'user' AND account_id IS NOT NULL AND amount <= 0)
         OR (kind = 'creator_earning' AND account_kind = 'creator' AND account_id IS NOT NULL AND amount >= 0)
         OR (kind = 'platform_fee' AND account_kind = 'platform' AND account_id IS NULL AND amount >= 0)))
       OR (adjustment_id IS NOT NULL AND kind = 'adjustment'
           AND ((account_kind = 'platform') = (account_id IS NULL)))`,
    )
    .execute();
  await db.schema.createIndex('session_events_session_id_at_idx').on('session_events').columns(['session_id', 'at']).execute();
  await sql`CREATE INDEX sessions_settled_at_idx ON sessions (end_time DESC, id DESC) WHERE settled_at IS NOT NULL`.execute(db);

  for (const table of ['ledger_entries', 'ledger_adjustments', 'session_events']) {
    await sql`
      CREATE TRIGGER ${sql.id(`${table}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION tollgate_append_only()
    `.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['ledger_entries', 'ledger_adjustments', 'session_events']) {
    await sql`DROP TRIGGER IF EXISTS ${sql.id(`${table}_append_only`)} ON ${sql.table(table)}`.execute(db);
  }
  await db.schema.dropIndex('sessions_settled_at_idx').execute();
  // adjustments go with their table: their ledger rows first (the trigger is gone)
  await sql`DELETE FROM ledger_entries WHERE adjustment_id IS NOT NULL`.execute(db);
  await db.schema.alterTable('ledger_entries').dropConstraint('ledger_entries_shape_check').execute();
  await db.schema.alterTable('ledger_entries').dropConstraint('ledger_entries_kind_check').execute();
  await db.schema
    .alterTable('ledger_entries')
    .addCheckConstraint('ledger_entries_kind_check', sql`kind IN ('session_charge', 'creator_earning', 'platform_fee')`)
    .execute();
  await db.schema
    .alterTable('ledger_entries')
    .addCheckConstraint(
      'ledger_entries_shape_check',
      sql`(kind = 'session_charge' AND account_kind = 'user' AND account_id IS NOT NULL AND amount <= 0)
        OR (kind = 'creator_earning' AND account_kind = 'creator' AND account_id IS NOT NULL AND amount >= 0)
        OR (kind = 'platform_fee' AND account_kind = 'platform' AND account_id IS NULL AND amount >= 0)`,
    )
    .execute();
  await sql`DROP INDEX ledger_entries_adjustment_account_key`.execute(db);
  await sql`DROP INDEX ledger_entries_session_id_kind_key`.execute(db);
  await db.schema
    .alterTable('ledger_entries')
    .addUniqueConstraint('ledger_entries_session_id_kind_key', ['session_id', 'kind'])
    .execute();
  await db.schema.alterTable('ledger_entries').dropColumn('adjustment_id').execute();
  await db.schema.dropTable('ledger_adjustments').execute();
  await db.schema.dropTable('session_events').execute();
  await sql`DROP FUNCTION tollgate_append_only()`.execute(db);
}
