/**
 * What Tollgate adds to the product schema: a double-entry ledger (one charge, one earning, one fee per
 * session, summing to zero), a credits_version that orders balance snapshots, settlement and live-state
 * columns on sessions, the client's idempotency key on messages, and the indexes billing queries use.
 */
import { sql, type Kysely } from 'kysely';

const TOUCHED_TABLES = ['user_profiles', 'clones', 'sessions', 'documents'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  // credits_version: bumped only when the balance changes, and never writable directly.
  await db.schema
    .alterTable('user_profiles')
    .addColumn('credits_version', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`
    CREATE FUNCTION tollgate_bump_credits_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.credits_remaining IS DISTINCT FROM OLD.credits_remaining THEN
        NEW.credits_version := OLD.credits_version + 1;
      ELSE
        NEW.credits_version := OLD.credits_version;
      END IF;
      RETURN NEW;
    END
    $$
  `.execute(db);
  await sql`
    CREATE TRIGGER user_profiles_bump_credits_version
    BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION tollgate_bump_credits_version()
  `.execute(db);

  await sql`
    CREATE FUNCTION tollgate_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.updated_at := now();
      RETURN NEW;
    END
    $$
  `.execute(db);
  for (const table of TOUCHED_TABLES) {
    await sql`
      CREATE TRIGGER ${sql.id(`${table}_touch_updated_at`)}
      BEFORE UPDATE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION tollgate_touch_updated_at()
    `.execute(db);
  }

  await db.schema
    .alterTable('sessions')
    .addColumn('state_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('active_ms', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('end_reason', 'text')
    .addColumn('settled_at', 'timestamptz')
    .execute();
  await db.schema
    .alterTable('sessions')
    .addCheckConstraint('sessions_live_state_check', sql`state_version >= 0 AND active_ms >= 0`)
    .execute();
  await db.schema
    .alterTable('sessions')
    .addCheckConstraint('sessions_settled_ended_check', sql`settled_at IS NULL OR status = 'ended'`)
    .execute();
  await db.schema
    .createIndex('sessions_user_id_start_time_idx')
    .on('sessions')
    .columns(['user_id', 'start_time'])
    .execute();
  await db.schema
    .createIndex('sessions_clone_id_end_time_idx')
    .on('sessions')
    .columns(['clone_id', 'end_time'])
    .execute();

  await db.schema.alterTable('messages').addColumn('client_message_id', 'varchar(64)').execute();
  // NULLs are distinct: AI messages (no client id) never collide.
  await db.schema
    .alterTable('messages')
    .addUniqueConstraint('messages_session_id_client_message_id_key', ['session_id', 'client_message_id'])
    .execute();
  await db.schema
    .createIndex('messages_session_id_created_at_idx')
    .on('messages')
    .columns(['session_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('ledger_entries')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('restrict'))
    .addColumn('account_kind', 'text', (c) => c.notNull())
    .addColumn('account_id', 'uuid', (c) => c.references('user_profiles.id').onDelete('restrict'))
    .addColumn('amount', sql`numeric(14,4)`, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('ledger_entries_session_id_kind_key', ['session_id', 'kind'])
    .addCheckConstraint('ledger_entries_account_kind_check', sql`account_kind IN ('user', 'creator', 'platform')`)
    .addCheckConstraint(
      'ledger_entries_kind_check',
      sql`kind IN ('session_charge', 'creator_earning', 'platform_fee')`,
    )
    // Each kind belongs to one account kind and moves money one way; only the platform has no account id.
    .addCheckConstraint(
      'ledger_entries_shape_check',
      sql`(kind = 'session_charge' AND account_kind = 'user' AND account_id IS NOT NULL AND amount <= 0)
        OR (kind = 'creator_earning' AND account_kind = 'creator' AND account_id IS NOT NULL AND amount >= 0)
        OR (kind = 'platform_fee' AND account_kind = 'platform' AND account_id IS NULL AND amount >= 0)`,
    )
    .execute();
  await db.schema.createIndex('ledger_entries_created_at_idx').on('ledger_entries').column('created_at').execute();
  await db.schema
    .createIndex('ledger_entries_account_idx')
    .on('ledger_entries')
    .columns(['account_kind', 'account_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ledger_entries').execute();

  await db.schema.dropIndex('messages_session_id_created_at_idx').execute();
  await db.schema.alterTable('messages').dropConstraint('messages_session_id_client_message_id_key').execute();
  await db.schema.alterTable('messages').dropColumn('client_message_id').execute();

  await db.schema.dropIndex('sessions_clone_id_end_time_idx').execute();
  await db.schema.dropIndex('sessions_user_id_start_time_idx').execute();
  await db.schema.alterTable('sessions').dropConstraint('sessions_settled_ended_check').execute();
  await db.schema.alterTable('sessions').dropConstraint('sessions_live_state_check').execute();
  await db.schema
    .alterTable('sessions')
    .dropColumn('settled_at')
    .dropColumn('end_reason')
    .dropColumn('active_ms')
    .dropColumn('state_version')
    .execute();

  for (const table of TOUCHED_TABLES) {
    await sql`DROP TRIGGER ${sql.id(`${table}_touch_updated_at`)} ON ${sql.table(table)}`.execute(db);
  }
  await sql`DROP FUNCTION tollgate_touch_updated_at()`.execute(db);
  await sql`DROP TRIGGER user_profiles_bump_credits_version ON user_profiles`.execute(db);
  await sql`DROP FUNCTION tollgate_bump_credits_version()`.execute(db);
  await db.schema.alterTable('user_profiles').dropColumn('credits_version').execute();
}
