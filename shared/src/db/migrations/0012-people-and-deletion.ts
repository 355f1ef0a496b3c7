/**
 * People as Supabase Auth knows them, and deleting one without losing the money records.
 *
 * Everywhere: `user_profiles.deleted_at`, and `tollgate_forget_user(id)` — the one path that deletes a person: the
 * profile's personal columns are cleared (email replaced by a unique placeholder, name, preferences, avatar, last
 * login), what they wrote and were told is erased from messages and feedback while every billing field stays
 * (cost_increment, tokens_used, sender, instants), a creator's clones are unpublished, and the ledger is not touched:
 * it stays balanced and still explains every credit. Callable by the service only (the billing API's admin route).
 *
 * Where Supabase Auth's `auth.users` exists (a Supabase project; not plain Postgres, whose `auth` schema 0010 made):
 * - `user_profiles.id` references `auth.users` (NOT VALID: profiles made before this migration are not rechecked);
 * - `tollgate_handle_new_user`: a profile is created when a person signs up (the usual `handle_new_user` trigger);
 * - a soft delete (`auth.admin.deleteUser(id, true)`, which sets `deleted_at`) forgets the person as above;
 * - a hard delete of a person with money records is refused with a message saying to soft-delete; one without (a
 *   sign-up that never paid or earned) goes through, and their profile with it.
 */
import { sql, type Kysely } from 'kysely';

async function authUsersExists(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ exists: boolean }>`SELECT to_regclass('auth.users') IS NOT NULL AS exists`.execute(db);
  return rows[0]?.exists ?? false;
}

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('user_profiles').addColumn('deleted_at', 'timestamptz').execute();
  await sql.raw(`
    CREATE FUNCTION public.tollgate_has_money_records(person uuid) RETURNS boolean LANGUAGE sql STABLE SET search_path = '' AS $$
      SELECT EXISTS (SELECT 1 FROM public.sessions WHERE user_id = person)
          OR EXISTS (SELECT 1 FROM public.ledger_entries WHERE account_id = person)
          OR EXISTS (SELECT 1 FROM public.sessions s JOIN public.clones c ON c.id = s.clone_id WHERE c.creator_id = person)
    $$
  `).execute(db);
  await sql.raw(`
    CREATE FUNCTION public.tollgate_forget_user(person uuid) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
    BEGIN
      UPDATE public.user_profiles
         SET email = 'deleted-' || id || '@deleted.invalid', full_name = NULL, preferences = '{}'::jsonb,
             avatar_url = NULL, last_login = NULL, deleted_at = coalesce(deleted_at, now())
       WHERE id = person;
      IF NOT FOUND THEN
        RETURN false;
      END IF;
      UPDATE public.messages m SET content = '', citations = NULL
        FROM public.sessions s
       WHERE s.id = m.session_id AND s.user_id = person AND (m.content <> '' OR m.citations IS NOT NULL);
      UPDATE public.sessions SET user_feedback = NULL WHERE user_id = person AND user_feedback IS NOT NULL;
      UPDATE public.clones SET is_published = false, is_active = false WHERE creator_id = person AND (is_published OR is_active);
      RETURN true;
    END
    $$
  `).execute(db);
  for (const fn of ['tollgate_has_money_records(uuid)', 'tollgate_forget_user(uuid)']) {
    await sql.raw(`REVOKE EXECUTE ON FUNCTION public.${fn} FROM PUBLIC, anon, authenticated`).execute(db);
    await sql.raw(`GRANT EXECUTE ON FUNCTION public.${fn} TO service_role`).execute(db);
  }

  if (!(await authUsersExists(db))) return;
  await sql`
    ALTER TABLE public.user_profiles ADD CONSTRAINT user_profiles_id_fkey
    FOREIGN KEY (id) REFERENCES auth.users (id) ON DELETE CASCADE NOT VALID
  `.execute(db);
  await sql.raw(`
    CREATE FUNCTION public.tollgate_handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
    BEGIN
      INSERT INTO public.user_profiles (id, email, full_name, avatar_url)
      VALUES (
        NEW.id,
        -- a phone sign-up has no email; the column is unique and required
        coalesce(NEW.email, NEW.id || '@users.invalid'),
        NEW.raw_user_meta_data ->> 'full_name',
        NEW.raw_user_meta_data ->> 'avatar_url'
      )
      ON CONFLICT (id) DO NOTHING;
      RETURN NEW;
    END
    $$
  `).execute(db);
  await sql.raw(`
    CREATE FUNCTION public.tollgate_auth_user_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF public.tollgate_has_money_records(OLD.id) THEN
          RAISE EXCEPTION 'user % has sessions or ledger entries: soft-delete them (auth.admin.deleteUser(id, true)) so the money records stay', OLD.id
            USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN OLD;
      END IF;
      PERFORM public.tollgate_forget_user(NEW.id);
      RETURN NEW;
    END
    $$
  `).execute(db);
  await sql`CREATE TRIGGER tollgate_on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.tollgate_handle_new_user()`.execute(db);
  await sql`CREATE TRIGGER tollgate_on_auth_user_hard_deleted BEFORE DELETE ON auth.users FOR EACH ROW EXECUTE FUNCTION public.tollgate_auth_user_deleted()`.execute(db);
  await sql`
    CREATE TRIGGER tollgate_on_auth_user_soft_deleted AFTER UPDATE OF deleted_at ON auth.users
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION public.tollgate_auth_user_deleted()
  `.execute(db);
  for (const fn of ['tollgate_handle_new_user()', 'tollgate_auth_user_deleted()']) {
    await sql.raw(`REVOKE EXECUTE ON FUNCTION public.${fn} FROM PUBLIC, anon, authenticated`).execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  if (await authUsersExists(db)) {
    await sql`DROP TRIGGER IF EXISTS tollgate_on_auth_user_soft_deleted ON auth.users`.execute(db);
    await sql`DROP TRIGGER IF EXISTS tollgate_on_auth_user_hard_deleted ON auth.users`.execute(db);
    await sql`DROP TRIGGER IF EXISTS tollgate_on_auth_user_created ON auth.users`.execute(db);
  }
  await sql`DROP FUNCTION IF EXISTS public.tollgate_auth_user_deleted()`.execute(db);
  await sql`DROP FUNCTION IF EXISTS public.tollgate_handle_new_user()`.execute(db);
  await sql`ALTER TABLE public.user_profiles DROP CONSTRAINT IF EXISTS user_profiles_id_fkey`.execute(db);
  await sql`DROP FUNCTION public.tollgate_forget_user(uuid)`.execute(db);
  await sql`DROP FUNCTION public.tollgate_has_money_records(uuid)`.execute(db);
  await db.schema.alterTable('user_profiles').dropColumn('deleted_at').execute();
}
