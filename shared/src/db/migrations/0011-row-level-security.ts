/**
 * Row-level security, as a Supabase project needs it: the product's apps read these tables through PostgREST with
 * the user's token (role `anon` or `authenticated`, claims in `request.jwt.claims`), so every table has RLS on and
 * each role gets exactly the rows and columns below. Tollgate's own processes connect as the tables' owner (the role
 * that ran the migrations: `postgres` in Supabase), which RLS does not apply to — RLS is not FORCEd — and
 * `service_role` bypasses it as Supabase made it.
 *
 * - a user reads their own profile, sessions, messages, session events, analytics and ledger entries, and may edit
 *   their profile's personal columns and rate their own sessions;
 * - anyone (anon too) reads published, active clones; a creator (role creator or admin) creates and edits their own
 *   clones and manages their documents, reads their documents' chunks, their `creator_analytics`, the ledger entries
 *   of their earnings, and their clones' settled sessions through `creator_session_totals()`;
 * - an admin (`user_profiles.role = 'admin'`) reads every table;
 * - nobody but the service writes money: no client role holds INSERT, UPDATE or DELETE on a money column
 *   (`credits_remaining`, `total_spent`, `role`, `subscription_tier`, session totals, clone totals, analytics, the
 *   ledger, adjustments, session events) — column privileges, so a policy cannot grant them by mistake.
 *
 * Policy predicates that look at another table go through SECURITY DEFINER functions (no recursion through that
 * table's own policies; one indexed lookup), with `auth.uid()` wrapped in a sub-select so Postgres evaluates it once
 * per statement rather than per row (Supabase's advice).
 */
import { sql, type Kysely } from 'kysely';

/** Every table of the public schema Tollgate owns but the migrator's: RLS on, client roles start with nothing. */
export const PROTECTED_TABLES = [
  'user_profiles', 'clones', 'sessions', 'messages', 'documents', 'document_chunks', 'user_analytics', 'creator_analytics',
  'ledger_entries', 'ledger_adjustments', 'session_events',
] as const;

/**
 * The migrator's own tables: no client privilege at all. Not ALTERed for RLS: a second process waiting for the
 * migration lock holds a lock on them, and ALTER TABLE would wait for it while it waits for us (a deadlock).
 */
const MIGRATOR_TABLES = ['kysely_migration', 'kysely_migration_lock'] as const;

const CLIENT_ROLES = sql.raw('anon, authenticated');

/** The statements of `up`, in order (one string each: policies are easier to review as SQL). */
const UP = [
  // -- who is asking: helpers the policies call (SECURITY DEFINER: they read past the RLS of the table they look at)
  `CREATE FUNCTION public.tollgate_is_admin() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
     SELECT EXISTS (SELECT 1 FROM public.user_profiles WHERE id = (SELECT auth.uid()) AND role = 'admin')
   $$`,
  `CREATE FUNCTION public.tollgate_is_creator() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
     SELECT EXISTS (SELECT 1 FROM public.user_profiles WHERE id = (SELECT auth.uid()) AND role IN ('creator', 'admin'))
   $$`,
  `CREATE FUNCTION public.tollgate_owns_clone(clone uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
     SELECT EXISTS (SELECT 1 FROM public.clones WHERE id = clone AND creator_id = (SELECT auth.uid()))
   $$`,
  `CREATE FUNCTION public.tollgate_owns_session(session uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
     SELECT EXISTS (SELECT 1 FROM public.sessions WHERE id = session AND user_id = (SELECT auth.uid()))
   $$`,
  `CREATE FUNCTION public.tollgate_owns_document(document uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
     SELECT EXISTS (
       SELECT 1 FROM public.documents d JOIN public.clones c ON c.id = d.clone_id
       WHERE d.id = document AND c.creator_id = (SELECT auth.uid())
     )
   $$`,

  // -- user_profiles: one's own; personal columns only
  `GRANT SELECT ON public.user_profiles TO authenticated`,
  `GRANT UPDATE (full_name, preferences, timezone, language, avatar_url) ON public.user_profiles TO authenticated`,
  `CREATE POLICY user_profiles_read_own ON public.user_profiles FOR SELECT TO authenticated
     USING (id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY user_profiles_edit_own ON public.user_profiles FOR UPDATE TO authenticated
     USING (id = (SELECT auth.uid())) WITH CHECK (id = (SELECT auth.uid()))`,

  // -- clones: the catalogue is public; a creator's own clones are theirs to write (never their totals)
  `GRANT SELECT ON public.clones TO anon, authenticated`,
  `GRANT INSERT (id, creator_id, name, description, bio, avatar_url, category, expertise_areas, base_price, personality_traits, is_published, is_active)
     ON public.clones TO authenticated`,
  `GRANT UPDATE (name, description, bio, avatar_url, category, expertise_areas, base_price, personality_traits, is_published, is_active)
     ON public.clones TO authenticated`,
  `CREATE POLICY clones_read_published ON public.clones FOR SELECT TO anon, authenticated
     USING (is_published AND is_active)`,
  `CREATE POLICY clones_read_own ON public.clones FOR SELECT TO authenticated
     USING (creator_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY clones_create_own ON public.clones FOR INSERT TO authenticated
     WITH CHECK (creator_id = (SELECT auth.uid()) AND (SELECT public.tollgate_is_creator()))`,
  `CREATE POLICY clones_edit_own ON public.clones FOR UPDATE TO authenticated
     USING (creator_id = (SELECT auth.uid())) WITH CHECK (creator_id = (SELECT auth.uid()))`,

  // -- sessions: the user's own (and they may rate them); creators read settled totals via creator_session_totals()
  `GRANT SELECT ON public.sessions TO authenticated`,
  `GRANT UPDATE (user_rating, user_feedback) ON public.sessions TO authenticated`,
  `CREATE POLICY sessions_read_own ON public.sessions FOR SELECT TO authenticated
     USING (user_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY sessions_rate_own ON public.sessions FOR UPDATE TO authenticated
     USING (user_id = (SELECT auth.uid())) WITH CHECK (user_id = (SELECT auth.uid()))`,

  // -- what happened in a session: its user's to read
  `GRANT SELECT ON public.messages, public.session_events TO authenticated`,
  `CREATE POLICY messages_read_own ON public.messages FOR SELECT TO authenticated
     USING ((SELECT public.tollgate_owns_session(session_id)) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY session_events_read_own ON public.session_events FOR SELECT TO authenticated
     USING ((SELECT public.tollgate_owns_session(session_id)) OR (SELECT public.tollgate_is_admin()))`,

  // -- a clone's knowledge base: its creator's (the ingestion worker fills in status, chunks and embeddings)
  `GRANT SELECT, DELETE ON public.documents TO authenticated`,
  `GRANT INSERT (id, clone_id, title, file_name, file_path, file_type, file_size_bytes) ON public.documents TO authenticated`,
  `GRANT UPDATE (title) ON public.documents TO authenticated`,
  `CREATE POLICY documents_read_own ON public.documents FOR SELECT TO authenticated
     USING ((SELECT public.tollgate_owns_clone(clone_id)) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY documents_create_own ON public.documents FOR INSERT TO authenticated
     WITH CHECK ((SELECT public.tollgate_owns_clone(clone_id)))`,
  `CREATE POLICY documents_edit_own ON public.documents FOR UPDATE TO authenticated
     USING ((SELECT public.tollgate_owns_clone(clone_id))) WITH CHECK ((SELECT public.tollgate_owns_clone(clone_id)))`,
  `CREATE POLICY documents_delete_own ON public.documents FOR DELETE TO authenticated
     USING ((SELECT public.tollgate_owns_clone(clone_id)))`,
  `GRANT SELECT ON public.document_chunks TO authenticated`,
  `CREATE POLICY document_chunks_read_own ON public.document_chunks FOR SELECT TO authenticated
     USING ((SELECT public.tollgate_owns_document(document_id)) OR (SELECT public.tollgate_is_admin()))`,

  // -- analytics and the ledger: one's own money, read only
  `GRANT SELECT ON public.user_analytics, public.creator_analytics, public.ledger_entries, public.ledger_adjustments TO authenticated`,
  `CREATE POLICY user_analytics_read_own ON public.user_analytics FOR SELECT TO authenticated
     USING (user_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY creator_analytics_read_own ON public.creator_analytics FOR SELECT TO authenticated
     USING (creator_id = (SELECT auth.uid()) OR (SELECT public.tollgate_is_admin()))`,
  // a user's charges and refunds, a creator's earnings: entries on their own account (never the platform's)
  `CREATE POLICY ledger_entries_read_own ON public.ledger_entries FOR SELECT TO authenticated
     USING ((account_kind IN ('user', 'creator') AND account_id = (SELECT auth.uid())) OR (SELECT public.tollgate_is_admin()))`,
  `CREATE POLICY ledger_adjustments_read_admin ON public.ledger_adjustments FOR SELECT TO authenticated
     USING ((SELECT public.tollgate_is_admin()))`,

  // -- a creator's view of their clones' settled sessions: totals and their share, nothing about the user
  `CREATE FUNCTION public.creator_session_totals()
     RETURNS TABLE (session_id uuid, clone_id uuid, session_type text, start_time timestamptz, end_time timestamptz,
                    duration_minutes integer, total_cost numeric, creator_earning numeric, settled_at timestamptz)
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
       SELECT s.id, s.clone_id, s.session_type, s.start_time, s.end_time, s.duration_minutes, s.total_cost,
              coalesce((SELECT sum(e.amount) FROM public.ledger_entries e
                        WHERE e.session_id = s.id AND e.account_kind = 'creator' AND e.account_id = c.creator_id), 0),
              s.settled_at
       FROM public.sessions s JOIN public.clones c ON c.id = s.clone_id
       WHERE c.creator_id = (SELECT auth.uid()) AND s.settled_at IS NOT NULL
       ORDER BY s.end_time DESC
     $$`,
];

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of PROTECTED_TABLES) {
    // RLS with no policy is "no rows"; a Supabase project's default grants to the client roles are taken back
    await sql`ALTER TABLE public.${sql.id(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`REVOKE ALL ON public.${sql.id(table)} FROM PUBLIC, ${CLIENT_ROLES}`.execute(db);
    await sql`GRANT ALL ON public.${sql.id(table)} TO service_role`.execute(db);
  }
  for (const table of MIGRATOR_TABLES) await sql`REVOKE ALL ON public.${sql.id(table)} FROM PUBLIC, ${CLIENT_ROLES}`.execute(db);
  for (const statement of UP) await sql.raw(statement).execute(db);
  // a function is callable by PUBLIC unless revoked: the service's own functions are not the clients'
  for (const fn of ['tollgate_bump_credits_version()', 'tollgate_touch_updated_at()', 'tollgate_append_only()']) {
    await sql.raw(`REVOKE EXECUTE ON FUNCTION public.${fn} FROM PUBLIC, anon, authenticated`).execute(db);
  }
  await sql.raw(`REVOKE EXECUTE ON FUNCTION public.creator_session_totals() FROM PUBLIC, anon`).execute(db);
  await sql.raw(`GRANT EXECUTE ON FUNCTION public.creator_session_totals() TO authenticated, service_role`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION public.creator_session_totals()`.execute(db);
  const { rows } = await sql<{ policyname: string; tablename: string }>`
    SELECT policyname, tablename FROM pg_policies WHERE schemaname = 'public'
  `.execute(db);
  for (const { policyname, tablename } of rows) await sql`DROP POLICY ${sql.id(policyname)} ON public.${sql.id(tablename)}`.execute(db);
  for (const table of PROTECTED_TABLES) {
    await sql`ALTER TABLE public.${sql.id(table)} DISABLE ROW LEVEL SECURITY`.execute(db);
    await sql`REVOKE ALL ON public.${sql.id(table)} FROM ${CLIENT_ROLES}, service_role`.execute(db);
  }
  for (const fn of ['tollgate_owns_document(uuid)', 'tollgate_owns_session(uuid)', 'tollgate_owns_clone(uuid)', 'tollgate_is_creator()', 'tollgate_is_admin()']) {
    await sql.raw(`DROP FUNCTION public.${fn}`).execute(db);
  }
}
