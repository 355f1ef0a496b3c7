/**
 * What the row-level security of 0011 is written against, as Supabase provides it: the roles PostgREST switches to
 * (`anon`, `authenticated`, `service_role`) and the `auth` schema's `auth.uid()`, `auth.jwt()` and `auth.role()`,
 * which read the claims PostgREST puts in `request.jwt.claims`. In a Supabase project all of it exists and nothing
 * here runs: the schema is created only when there is no `auth` schema (plain Postgres: CI, a local `npm start`, a
 * deployment outside Supabase), and a role only when it is missing. The function bodies are Supabase's (supabase/auth
 * migrations), so a policy behaves the same on both. On plain Postgres the roles are inert: nothing logs in as them.
 */
import { sql, type Kysely } from 'kysely';

/** Creates a role unless it exists; migrations of several databases on one server may race for it. */
const createRole = (name: 'anon' | 'authenticated' | 'service_role', attributes: string) => sql`
  DO $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${sql.lit(name)}) THEN
      EXECUTE ${sql.lit(`CREATE ROLE ${name} ${attributes}`)};
    END IF;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by another database's migration
  END
  $$
`;

export async function up(db: Kysely<any>): Promise<void> {
  await createRole('anon', 'NOLOGIN NOINHERIT').execute(db);
  await createRole('authenticated', 'NOLOGIN NOINHERIT').execute(db);
  // Supabase's service role bypasses row-level security: it is the service's own key
  await createRole('service_role', 'NOLOGIN NOINHERIT BYPASSRLS').execute(db);

  const { rows } = await sql<{ exists: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') AS exists`.execute(db);
  if (rows[0]?.exists) return; // Supabase's own (or an earlier run's): never touched
  await sql`CREATE SCHEMA auth`.execute(db);
  await sql`GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role`.execute(db);
  await sql`
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
      SELECT nullif(
        coalesce(current_setting('request.jwt.claim.sub', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')),
        ''
      )::uuid
    $$
  `.execute(db);
  await sql`
    CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
      SELECT nullif(
        coalesce(current_setting('request.jwt.claim.role', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'role')),
        ''
      )::text
    $$
  `.execute(db);
  await sql`
    CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $$
  `.execute(db);
  // marks the schema as this migration's, so `down` drops only what it made
  await sql`COMMENT ON SCHEMA auth IS 'tollgate: Supabase auth functions for plain Postgres (0010)'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // roles are the server's, shared with its other databases: they stay
  const { rows } = await sql<{ ours: boolean }>`
    SELECT obj_description(oid, 'pg_namespace') LIKE 'tollgate:%' AS ours FROM pg_namespace WHERE nspname = 'auth'
  `.execute(db);
  if (rows[0]?.ours) await sql`DROP SCHEMA auth CASCADE`.execute(db);
}
