/**
 * Subscriptions (issue 19): the seed's `subscription_tier` made real. A `subscriptions` row per Stripe subscription,
 * kept to the newest event about it (`event_created`: an older `updated` delivered after a `deleted` changes
 * nothing); a user's tier is the best tier among their live subscriptions. Each paid invoice grants its tier's
 * monthly credits once: a `grant` movement (user +credits against the platform), unique by `invoice:<id>`.
 */
import { sql, type Kysely } from 'kysely';

const KINDS_BEFORE = `'opening_balance', 'purchase', 'card_refund', 'dispute'`;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('subscriptions')
    .addColumn('stripe_subscription_id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('cascade'))
    .addColumn('tier', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('current_period_end', 'timestamptz')
    /** `created` (Unix seconds) of the newest event applied: older ones are stale. */
    .addColumn('event_created', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('subscriptions_tier_check', sql`tier IN ('pro', 'enterprise')`)
    .execute();
  await db.schema.createIndex('subscriptions_user_id_idx').on('subscriptions').column('user_id').execute();
  await sql`ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`REVOKE ALL ON subscriptions FROM PUBLIC, anon, authenticated`.execute(db);
  await sql`GRANT ALL ON subscriptions TO service_role`.execute(db);
  await sql`GRANT SELECT ON subscriptions TO authenticated`.execute(db);
  await sql.raw(`
    CREATE POLICY subscriptions_read_own ON public.subscriptions FOR SELECT TO authenticated
      USING (user_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);

  await sql.raw(`ALTER TABLE money_movements DROP CONSTRAINT money_movements_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE money_movements ADD CONSTRAINT money_movements_kind_check CHECK (kind IN (${KINDS_BEFORE}, 'grant'))`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_kind_check CHECK (kind IN (${KINDS_BEFORE}, 'platform_loss', 'grant'))`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(`ALTER TABLE movement_entries DROP CONSTRAINT movement_entries_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE movement_entries ADD CONSTRAINT movement_entries_kind_check CHECK (kind IN (${KINDS_BEFORE}, 'platform_loss'))`).execute(db);
  await sql.raw(`ALTER TABLE money_movements DROP CONSTRAINT money_movements_kind_check`).execute(db);
  await sql.raw(`ALTER TABLE money_movements ADD CONSTRAINT money_movements_kind_check CHECK (kind IN (${KINDS_BEFORE}))`).execute(db);
  await db.schema.dropTable('subscriptions').execute();
}
