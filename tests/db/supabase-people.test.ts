import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { installSupabaseAuth } from '../support/supabase-auth.ts';

// People as a Supabase project has them: a database that already has Supabase Auth's `auth.users` when Tollgate's
// migrations run (tests/support/supabase-auth.ts), and a plain Postgres one for the parts that apply everywhere.
// Signing up creates a profile; deleting a person keeps the money records and forgets the person.

let supabase: TestDatabase;
let plain: TestDatabase;

test.before(async () => {
  [supabase, plain] = await Promise.all([createTestDatabase({ beforeMigrate: installSupabaseAuth }), createTestDatabase()]);
});
test.after(async () => {
  await Promise.all([supabase?.drop(), plain?.drop()]);
});

const signUp = (id: string, fields: { email?: string | null; phone?: string; meta?: Record<string, unknown> }) =>
  sql`
    INSERT INTO auth.users (id, aud, role, email, phone, raw_user_meta_data)
    VALUES (${id}, 'authenticated', 'authenticated', ${fields.email ?? null}, ${fields.phone ?? null}, ${JSON.stringify(fields.meta ?? {})}::jsonb)
  `.execute(supabase.db);

/** A settled session of `user` on a clone of `creator`, with two messages and its three balanced ledger rows. */
async function settledSession(db: TestDatabase['db'], user: string, creator: string): Promise<{ sessionId: string; cloneId: string }> {
  const cloneId = randomUUID();
  const sessionId = randomUUID();
  await db.insertInto('clones').values({ id: cloneId, creator_id: creator, name: 'Dr. Who', base_price: '1.0000', is_published: true, is_active: true }).execute();
  const now = new Date();
  await db.insertInto('sessions').values({ id: sessionId, user_id: user, clone_id: cloneId, session_type: 'chat' as const, status: 'ended' as const, end_time: now, rate_per_minute: '1.0000', total_cost: '2.5000', message_count: 2, settled_at: now, user_feedback: 'my private thoughts' }).execute();
  await db.insertInto('messages').values([
    { id: randomUUID(), session_id: sessionId, sender_type: 'user', content: 'my medical history', cost_increment: '0.0000', tokens_used: 0 },
    { id: randomUUID(), session_id: sessionId, sender_type: 'ai', content: 'advice about it', cost_increment: '0.0100', tokens_used: 42, citations: JSON.stringify([{ documentId: randomUUID(), title: 't', chunkIndex: 0 }]) },
  ]).execute();
  await db.insertInto('ledger_entries').values([
    { session_id: sessionId, account_kind: 'user' as const, account_id: user, amount: '-2.5000', kind: 'session_charge' as const },
    { session_id: sessionId, account_kind: 'creator' as const, account_id: creator, amount: '2.0000', kind: 'creator_earning' as const },
    { session_id: sessionId, account_kind: 'platform' as const, account_id: null, amount: '0.5000', kind: 'platform_fee' as const },
  ]).execute();
  return { sessionId, cloneId };
}

async function moneyOf(db: TestDatabase['db'], sessionId: string) {
  const ledger = await db.selectFrom('ledger_entries').select(['kind', 'account_id', 'amount']).where('session_id', '=', sessionId).orderBy('kind').execute();
  const balance = await sql<{ total: string }>`SELECT sum(amount)::text AS total FROM ledger_entries WHERE session_id = ${sessionId}`.execute(db);
  const session = await db.selectFrom('sessions').select(['total_cost', 'rate_per_minute', 'message_count', 'settled_at', 'user_feedback']).where('id', '=', sessionId).executeTakeFirstOrThrow();
  const messages = await db.selectFrom('messages').select(['sender_type', 'content', 'cost_increment', 'tokens_used', 'citations']).where('session_id', '=', sessionId).orderBy('sender_type').execute();
  return { ledger, balance: balance.rows[0]!.total, session, messages };
}

test('a Supabase project\'s auth schema is left as it was; user_profiles.id references auth.users', async () => {
  const { rows } = await sql<{ comment: string | null; functions: number }>`
    SELECT obj_description('auth'::regnamespace, 'pg_namespace') AS comment,
           (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'auth'::regnamespace) AS functions
  `.execute(supabase.db);
  assert.is(rows[0]!.comment, null, 'not marked as Tollgate\'s');
  assert.is(rows[0]!.functions, 3);
  const { rows: fk } = await sql<{ target: string }>`
    SELECT confrelid::regclass::text AS target FROM pg_constraint WHERE conname = 'user_profiles_id_fkey'
  `.execute(supabase.db);
  assert.equal(fk, [{ target: 'auth.users' }]);
  const orphan = await supabase.db.insertInto('user_profiles').values({ id: randomUUID(), email: 'nobody@example.com' }).execute().catch((e: { code: string }) => e.code);
  assert.is(orphan, '23503', 'a profile needs its auth.users row');
  // on plain Postgres there is no auth.users: no reference, and the auth schema is the one 0010 made
  const { rows: plainFk } = await sql`SELECT 1 FROM pg_constraint WHERE conname = 'user_profiles_id_fkey'`.execute(plain.db);
  assert.equal(plainFk, []);
});

test('signing up creates the profile (email, name and avatar from the sign-up; a phone sign-up gets a placeholder email)', async () => {
  const id = randomUUID();
  await signUp(id, { email: 'new@example.com', meta: { full_name: 'New Person', avatar_url: 'https://example.com/a.png' } });
  const profile = await supabase.db.selectFrom('user_profiles').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  assert.is(profile.email, 'new@example.com');
  assert.is(profile.full_name, 'New Person');
  assert.is(profile.avatar_url, 'https://example.com/a.png');
  assert.is(profile.role, 'user', 'nobody signs up as an admin or a creator');
  assert.is(profile.credits_remaining, '100.0000');
  const phone = randomUUID();
  await signUp(phone, { phone: '+15550100', meta: { full_name: 'Phone', role: 'admin' } });
  const phoneProfile = await supabase.db.selectFrom('user_profiles').select(['email', 'role']).where('id', '=', phone).executeTakeFirstOrThrow();
  assert.is(phoneProfile.email, `${phone}@users.invalid`);
  assert.is(phoneProfile.role, 'user', 'metadata cannot choose a role');
});

test('a soft delete forgets the person and keeps every money record: ledger balanced, totals and message costs unchanged', async () => {
  const [user, creator] = [randomUUID(), randomUUID()];
  await signUp(user, { email: 'leaving@example.com', meta: { full_name: 'Leaving Soon', avatar_url: 'https://example.com/l.png' } });
  await signUp(creator, { email: 'creator-leaving@example.com', meta: { full_name: 'Creator' } });
  await supabase.db.updateTable('user_profiles').set({ role: 'creator' }).where('id', '=', creator).execute();
  await supabase.db.updateTable('user_profiles').set({ preferences: JSON.stringify({ theme: 'dark' }) }).where('id', '=', user).execute();
  const { sessionId, cloneId } = await settledSession(supabase.db, user, creator);
  const before = await moneyOf(supabase.db, sessionId);
  assert.is(before.balance, '0.0000');

  // what auth.admin.deleteUser(id, true) does to the row: deleted_at set (GoTrue also obfuscates its own columns)
  await sql`UPDATE auth.users SET deleted_at = now(), email = NULL WHERE id IN (${user}, ${creator})`.execute(supabase.db);

  const profile = await supabase.db.selectFrom('user_profiles').selectAll().where('id', '=', user).executeTakeFirstOrThrow();
  assert.is(profile.email, `deleted-${user}@deleted.invalid`);
  assert.is(profile.full_name, null);
  assert.is(profile.avatar_url, null);
  assert.equal(profile.preferences, {});
  assert.ok(profile.deleted_at instanceof Date);
  const after = await moneyOf(supabase.db, sessionId);
  assert.equal(after.ledger, before.ledger, 'the ledger is untouched');
  assert.is(after.balance, '0.0000');
  assert.equal(
    after.session,
    { ...before.session, user_feedback: null },
    'session totals stay; the feedback the person wrote goes',
  );
  assert.equal(after.messages.map((m) => [m.sender_type, m.content, m.cost_increment, m.tokens_used, m.citations]), [
    ['ai', '', '0.0100', 42, null],
    ['user', '', '0.0000', 0, null],
  ]);
  const clone = await supabase.db.selectFrom('clones').select(['is_published', 'is_active', 'creator_id']).where('id', '=', cloneId).executeTakeFirstOrThrow();
  assert.equal(clone, { is_published: false, is_active: false, creator_id: creator }, 'a deleted creator\'s clone leaves the catalogue');
  assert.is((await supabase.db.selectFrom('user_profiles').select('email').where('id', '=', creator).executeTakeFirstOrThrow()).email, `deleted-${creator}@deleted.invalid`);
});

test('a hard delete of a person with money records is refused; one without goes through with their profile', async () => {
  const [payer, creator, browser] = [randomUUID(), randomUUID(), randomUUID()];
  await signUp(payer, { email: 'payer@example.com' });
  await signUp(creator, { email: 'earner@example.com' });
  await signUp(browser, { email: 'browser@example.com' });
  await settledSession(supabase.db, payer, creator);
  for (const person of [payer, creator]) {
    const refusal = await sql`DELETE FROM auth.users WHERE id = ${person}`.execute(supabase.db).catch((e: { code: string; message: string }) => e);
    assert.ok('code' in refusal && refusal.code === '23001', `hard delete of ${person} refused`);
    assert.match((refusal as { message: string }).message, /soft-delete/);
    assert.ok(await supabase.db.selectFrom('user_profiles').select('id').where('id', '=', person).executeTakeFirst());
  }
  await sql`DELETE FROM auth.users WHERE id = ${browser}`.execute(supabase.db);
  assert.is(await supabase.db.selectFrom('user_profiles').select('id').where('id', '=', browser).executeTakeFirst(), undefined);
});

test('on plain Postgres the service forgets a person with tollgate_forget_user (the same path), and only the service may', async () => {
  const [user, creator] = [randomUUID(), randomUUID()];
  await plain.db.insertInto('user_profiles').values([
    { id: user, email: 'plain@example.com', full_name: 'Plain User' },
    { id: creator, email: 'plain-creator@example.com', role: 'creator' },
  ]).execute();
  const { sessionId } = await settledSession(plain.db, user, creator);
  const before = await moneyOf(plain.db, sessionId);
  const { rows } = await sql<{ forgotten: boolean }>`SELECT public.tollgate_forget_user(${user}) AS forgotten`.execute(plain.db);
  assert.is(rows[0]!.forgotten, true);
  const { rows: unknown } = await sql<{ forgotten: boolean }>`SELECT public.tollgate_forget_user(${randomUUID()}) AS forgotten`.execute(plain.db);
  assert.is(unknown[0]!.forgotten, false);
  const after = await moneyOf(plain.db, sessionId);
  assert.equal(after.ledger, before.ledger);
  assert.equal(after.session.total_cost, before.session.total_cost);
  assert.equal(after.messages.map((m) => m.content), ['', '']);
  const profile = await plain.db.selectFrom('user_profiles').select(['email', 'full_name', 'deleted_at']).where('id', '=', user).executeTakeFirstOrThrow();
  assert.is(profile.email, `deleted-${user}@deleted.invalid`);
  assert.is(profile.full_name, null);
  assert.ok(profile.deleted_at);
  // the function is not the clients': PostgREST exposes every function their roles may execute
  const { rows: grants } = await sql<{ grantee: string }>`
    SELECT grantee FROM information_schema.role_routine_grants WHERE routine_name = 'tollgate_forget_user' AND grantee IN ('PUBLIC', 'anon', 'authenticated')
  `.execute(plain.db);
  assert.equal(grants, []);
});

test.run();
