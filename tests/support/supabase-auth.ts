/**
 * What a Supabase project has before Tollgate's migrations run, for the tests of the parts that only apply there:
 * Supabase Auth's `auth` schema with `auth.users` (the columns GoTrue's migrations create that the triggers read) and
 * its `auth.uid()` / `auth.role()` / `auth.jwt()`, and the roles PostgREST switches to. Given to
 * `createTestDatabase({ beforeMigrate: installSupabaseAuth })`; migration 0010 then finds the schema and leaves it be.
 */
import { sql, type Kysely } from 'kysely';

export async function installSupabaseAuth(db: Kysely<any>): Promise<void> {
  for (const role of ['anon', 'authenticated', 'service_role']) {
    await sql.raw(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} NOLOGIN NOINHERIT; END IF;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$
    `).execute(db);
  }
  await sql`CREATE SCHEMA auth`.execute(db);
  await sql`GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role`.execute(db);
  await sql`
    CREATE TABLE auth.users (
      instance_id uuid,
      id uuid PRIMARY KEY,
      aud varchar(255),
      role varchar(255),
      email varchar(255),
      encrypted_password varchar(255),
      email_confirmed_at timestamptz,
      phone text UNIQUE,
      raw_app_meta_data jsonb,
      raw_user_meta_data jsonb,
      is_anonymous boolean NOT NULL DEFAULT false,
      created_at timestamptz DEFAULT now(),
      updated_at timestamptz DEFAULT now(),
      deleted_at timestamptz
    )
  `.execute(db);
  await sql`
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
      SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')), '')::uuid
    $$
  `.execute(db);
  await sql`
    CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
      SELECT nullif(coalesce(current_setting('request.jwt.claim.role', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'role')), '')::text
    $$
  `.execute(db);
  await sql`
    CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
      SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb
    $$
  `.execute(db);
}
