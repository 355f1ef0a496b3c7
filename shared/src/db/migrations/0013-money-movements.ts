/**
 * Money that enters and leaves other than through a session: the credits a person starts with, credit purchases
 * through Stripe, their refunds and disputes (issue 19). Each is a `money_movements` row — one per real-world event,
 * unique by its `reference` (`opening:<user>`, `checkout:<Checkout Session id>`, `refund:<charge>:<refund id>`, …), so
 * a webhook delivered twice or a retried job moves nothing twice — and its `movement_entries`, which sum to zero:
 * the person's account against the platform's `cash` (what Stripe holds for it, in credits at the pack's price) or
 * `platform` (what the platform gives away or loses). Entries are append-only like the session ledger, and a
 * constraint trigger checks each movement's sum at commit.
 *
 * With `ledger_entries` (sessions, adjustments) this closes the ledger over every credit: a person's
 * `credits_remaining` is the sum of their user-account entries in both tables. The credits a profile is created with
 * enter as an `opening_balance` movement (trigger on insert; existing profiles get theirs here, from the difference
 * between their balance and their session entries), so the sum explains every balance from its first day.
 *
 * `credit_purchases` follows a purchase from its Checkout Session to paid, refunded or disputed; `stripe_events` holds
 * every webhook event applied, so an event is applied once however often it is delivered.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('money_movements')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('kind', 'text', (c) => c.notNull())
    // no reference to the profile: the ledger outlives a hard-deleted sign-up (their opening balance stays a fact)
    .addColumn('user_id', 'uuid', (c) => c.notNull())
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    /** Credits moved on the person's account: positive in, negative out. */
    .addColumn('credits', sql`numeric(14,4)`, (c) => c.notNull())
    /** The cash that moved with it, in the currency's minor units (0 when none did). */
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('currency', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('money_movements_kind_check', sql`kind IN ('opening_balance', 'purchase', 'card_refund', 'dispute')`)
    .execute();
  await db.schema.createIndex('money_movements_user_id_created_at_idx').on('money_movements').columns(['user_id', 'created_at']).execute();
  await db.schema.createIndex('money_movements_created_at_idx').on('money_movements').column('created_at').execute();

  await db.schema
    .createTable('movement_entries')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('movement_id', 'uuid', (c) => c.notNull().references('money_movements.id').onDelete('restrict'))
    .addColumn('account_kind', 'text', (c) => c.notNull())
    .addColumn('account_id', 'uuid')
    .addColumn('amount', sql`numeric(14,4)`, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('movement_entries_account_kind_check', sql`account_kind IN ('user', 'cash', 'platform')`)
    .addCheckConstraint('movement_entries_account_check', sql`(account_kind = 'user') = (account_id IS NOT NULL)`)
    .addCheckConstraint(
      'movement_entries_kind_check',
      sql`kind IN ('opening_balance', 'purchase', 'card_refund', 'dispute', 'platform_loss')`,
    )
    .addUniqueConstraint('movement_entries_movement_account_kind_key', ['movement_id', 'account_kind', 'kind'])
    .execute();
  await db.schema.createIndex('movement_entries_account_idx').on('movement_entries').columns(['account_kind', 'account_id']).execute();

  // every movement sums to zero, checked once its entries are all written (at commit)
  await sql`
    CREATE FUNCTION tollgate_movement_balances() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      total numeric;
    BEGIN
      SELECT coalesce(sum(amount), 0) INTO total FROM movement_entries WHERE movement_id = NEW.movement_id;
      IF total <> 0 THEN
        RAISE EXCEPTION 'money movement % does not balance: its entries sum to %', NEW.movement_id, total
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END
    $$
  `.execute(db);
  await sql`
    CREATE CONSTRAINT TRIGGER movement_entries_balance AFTER INSERT ON movement_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tollgate_movement_balances()
  `.execute(db);
  for (const table of ['money_movements', 'movement_entries']) {
    await sql`
      CREATE TRIGGER ${sql.id(`${table}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION tollgate_append_only()
    `.execute(db);
  }

  // the credits a profile is created with enter the ledger with it
  await sql`
    CREATE FUNCTION tollgate_opening_balance() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
    DECLARE
      movement uuid;
    BEGIN
      IF NEW.credits_remaining = 0 THEN
        RETURN NULL;
      END IF;
      INSERT INTO public.money_movements (kind, user_id, reference, credits)
      VALUES ('opening_balance', NEW.id, 'opening:' || NEW.id, NEW.credits_remaining)
      RETURNING id INTO movement;
      INSERT INTO public.movement_entries (movement_id, account_kind, account_id, amount, kind) VALUES
        (movement, 'user', NEW.id, NEW.credits_remaining, 'opening_balance'),
        (movement, 'platform', NULL, -NEW.credits_remaining, 'opening_balance');
      RETURN NULL;
    END
    $$
  `.execute(db);
  await sql`
    CREATE TRIGGER user_profiles_opening_balance AFTER INSERT ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION tollgate_opening_balance()
  `.execute(db);
  await db.schema
    .createTable('credit_purchases')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    // a paid purchase makes its buyer someone with money records (never hard-deleted); an unpaid one goes with them
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('cascade'))
    .addColumn('pack_id', 'text', (c) => c.notNull())
    /** The buyer's key for this purchase request: the same key is the same Checkout Session. */
    .addColumn('request_key', 'text', (c) => c.notNull().unique())
    .addColumn('checkout_session_id', 'text', (c) => c.notNull().unique())
    .addColumn('checkout_url', 'text')
    .addColumn('payment_intent_id', 'text', (c) => c.unique())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('credits', sql`numeric(14,4)`, (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
    /** Cash given back to the card or taken by a dispute so far (minor units). */
    .addColumn('reversed_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('paid_at', 'timestamptz')
    .addCheckConstraint('credit_purchases_status_check', sql`status IN ('pending', 'paid', 'refunded', 'disputed')`)
    .addCheckConstraint('credit_purchases_amounts_check', sql`amount_minor > 0 AND credits > 0 AND reversed_minor BETWEEN 0 AND amount_minor`)
    .execute();
  await db.schema.createIndex('credit_purchases_user_id_created_at_idx').on('credit_purchases').columns(['user_id', 'created_at']).execute();

  await db.schema
    .createTable('stripe_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // money that moved through Stripe makes a person someone whose records stay (0012's hard-delete guard)
  await sql.raw(`
    CREATE OR REPLACE FUNCTION public.tollgate_has_money_records(person uuid) RETURNS boolean LANGUAGE sql STABLE SET search_path = '' AS $$
      SELECT EXISTS (SELECT 1 FROM public.sessions WHERE user_id = person)
          OR EXISTS (SELECT 1 FROM public.ledger_entries WHERE account_id = person)
          OR EXISTS (SELECT 1 FROM public.sessions s JOIN public.clones c ON c.id = s.clone_id WHERE c.creator_id = person)
          OR EXISTS (SELECT 1 FROM public.money_movements WHERE user_id = person AND kind <> 'opening_balance')
    $$
  `).execute(db);

  // Supabase: the new tables are the service's; a person reads their own purchases and movements
  for (const table of ['money_movements', 'movement_entries', 'credit_purchases', 'stripe_events']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`REVOKE ALL ON ${sql.table(table)} FROM PUBLIC, anon, authenticated`.execute(db);
    await sql`GRANT ALL ON ${sql.table(table)} TO service_role`.execute(db);
  }
  await sql`GRANT SELECT ON money_movements, movement_entries, credit_purchases TO authenticated`.execute(db);
  await sql.raw(`
    CREATE POLICY money_movements_read_own ON public.money_movements FOR SELECT TO authenticated
      USING (user_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);
  await sql.raw(`
    CREATE POLICY movement_entries_read_own ON public.movement_entries FOR SELECT TO authenticated
      USING ((account_kind = 'user' AND account_id = (SELECT auth.uid())) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);
  await sql.raw(`
    CREATE POLICY credit_purchases_read_own ON public.credit_purchases FOR SELECT TO authenticated
      USING (user_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))
  `).execute(db);
  for (const fn of ['tollgate_movement_balances()', 'tollgate_opening_balance()']) {
    await sql.raw(`REVOKE EXECUTE ON FUNCTION public.${fn} FROM PUBLIC, anon, authenticated`).execute(db);
  }
  // last: its entries leave the balance check pending (checked at once below: no table may be altered while it is)
  // profiles from before: their opening balance is what their session entries do not explain
  await sql`
    WITH opening AS (
      SELECT p.id, p.credits_remaining - coalesce((
        SELECT sum(l.amount) FROM ledger_entries l WHERE l.account_kind = 'user' AND l.account_id = p.id
      ), 0) AS credits
      FROM user_profiles p
    ), movements AS (
      INSERT INTO money_movements (kind, user_id, reference, credits)
      SELECT 'opening_balance', id, 'opening:' || id, credits FROM opening WHERE credits <> 0
      RETURNING id, user_id, credits
    )
    INSERT INTO movement_entries (movement_id, account_kind, account_id, amount, kind)
    SELECT id, 'user', user_id, credits, 'opening_balance' FROM movements
    UNION ALL
    SELECT id, 'platform', NULL, -credits, 'opening_balance' FROM movements
  `.execute(db);
  // check those balances now: the migrations after this one run in the same transaction and may alter these tables
  await sql`SET CONSTRAINTS movement_entries_balance IMMEDIATE`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(`
    CREATE OR REPLACE FUNCTION public.tollgate_has_money_records(person uuid) RETURNS boolean LANGUAGE sql STABLE SET search_path = '' AS $$
      SELECT EXISTS (SELECT 1 FROM public.sessions WHERE user_id = person)
          OR EXISTS (SELECT 1 FROM public.ledger_entries WHERE account_id = person)
          OR EXISTS (SELECT 1 FROM public.sessions s JOIN public.clones c ON c.id = s.clone_id WHERE c.creator_id = person)
    $$
  `).execute(db);
  await sql`DROP TRIGGER user_profiles_opening_balance ON user_profiles`.execute(db);
  await sql`DROP FUNCTION tollgate_opening_balance()`.execute(db);
  await db.schema.dropTable('stripe_events').execute();
  await db.schema.dropTable('credit_purchases').execute();
  await db.schema.dropTable('movement_entries').execute();
  await db.schema.dropTable('money_movements').execute();
  await sql`DROP FUNCTION tollgate_movement_balances()`.execute(db);
}
