/**
 * Creator payouts (issue 19): what creators earned leaves through Stripe Connect transfers. A creator's earnings are
 * the creator-account entries of the session ledger (`ledger_entries`: earnings, adjustments); a payout moves what is
 * owed to "paid" with a `payout` movement (creator −amount against the platform's cash) and a transfer failed or
 * reversed restores it with a `payout_reversal`. So, per creator: owed = earned − paid − pending, the sum of their
 * creator-account entries in both tables. One payout per creator and period (`payouts_creator_id_period_key`).
 */
import { sql, type Kysely } from 'kysely';

const MOVEMENT_KINDS_BEFORE = `'opening_balance', 'purchase', 'card_refund', 'dispute', 'grant'`;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('payout_accounts')
    .addColumn('creator_id', 'uuid', (c) => c.primaryKey().references('user_profiles.id').onDelete('cascade'))
    .addColumn('stripe_account_id', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('payouts')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('creator_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('restrict'))
    /** The period it pays for (`YYYY-MM`): one payout per creator and period. */
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('credits', sql`numeric(14,4)`, (c) => c.notNull())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('stripe_account_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('transfer_id', 'text', (c) => c.unique())
    .addColumn('failure', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('payouts_creator_id_period_key', ['creator_id', 'period'])
    .addCheckConstraint('payouts_status_check', sql`status IN ('pending', 'paid', 'failed', 'reversed')`)
    .addCheckConstraint('payouts_period_check', sql`period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'`)
    .addCheckConstraint('payouts_amount_check', sql`credits > 0 AND amount_minor > 0`)
    .execute();
  for (const table of ['payout_accounts', 'payouts']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`REVOKE ALL ON ${sql.table(table)} FROM PUBLIC, anon, authenticated`.execute(db);
    await sql`GRANT ALL ON ${sql.table(table)} TO service_role`.execute(db);
  }
  await sql`GRANT SELECT ON payouts TO authenticated`.execute(db);
  await sql.raw(`
    CREATE POLICY payouts_read_own ON public.payouts FOR SELECT TO authenticated
      USING (creator_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);

  await sql.raw(`ALTER TABLE money_movements DROP CONSTRAINT money_movements_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE money_movements ADD CONSTRAINT money_movements_kind_check CHECK (kind IN (${MOVEMENT_KINDS_BEFORE}, 'payout', 'payout_reversal'))`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_kind_check CHECK (kind IN (${MOVEMENT_KINDS_BEFORE}, 'platform_loss', 'payout', 'payout_reversal'))`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_account_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_account_kind_check CHECK (account_kind IN ('user', 'creator', 'cash', 'platform'))`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_account_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_account_check CHECK ((account_kind IN ('user', 'creator')) = (account_id IS NOT NULL))`).execute(db);
  // a creator reads their own payout entries, as their earnings
  await sql.raw(`DROP POLICY movement_entries_read_own ON public.movement_entries`).execute(db);
  await sql.raw(`
    CREATE POLICY movement_entries_read_own ON public.movement_entries FOR SELECT TO authenticated
      USING ((account_kind IN ('user', 'creator') AND account_id = (SELECT auth.uid())) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(`DROP POLICY movement_entries_read_own ON public.movement_entries`).execute(db);
  await sql.raw(`
    CREATE POLICY movement_entries_read_own ON public.movement_entries FOR SELECT TO authenticated
      USING ((account_kind = 'user' AND account_id = (SELECT auth.uid())) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_account_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_account_check CHECK ((account_kind = 'user') = (account_id IS NOT NULL))`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_account_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_account_kind_check CHECK (account_kind IN ('user', 'cash', 'platform'))`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_kind_check CHECK (kind IN (${MOVEMENT_KINDS_BEFORE}, 'platform_loss'))`).execute(db);
  await sql.raw(`ALTER TABLE money_movements DROP CONSTRAINT money_movements_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE money_movements ADD CONSTRAINT money_movements_kind_check CHECK (kind IN (${MOVEMENT_KINDS_BEFORE}))`).execute(db);
  await db.schema.dropTable('payouts').execute();
  await db.schema.dropTable('payout_accounts').execute();
}
