import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { UserRole } from '#shared/db/schema.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// Row-level security as the product's apps meet it through PostgREST: each query runs in a transaction under the
// role PostgREST switches to (`anon`, `authenticated`, `service_role`) with the token's claims in
// `request.jwt.claims`, exactly as PostgREST sets them, and is rolled back. Allowed reads return the rows, forbidden
// reads return none (or are refused outright where the role has no privilege), forbidden writes fail.

let t: TestDatabase;
let pool: pg.Pool;

const ids = {
  alice: randomUUID(), // a user with a settled session on carol's clone
  bob: randomUUID(), // a user with a session on dave's clone
  carol: randomUUID(), // a creator
  dave: randomUUID(), // another creator
  admin: randomUUID(),
  carolPublished: randomUUID(),
  carolDraft: randomUUID(),
  davePublished: randomUUID(),
  aliceSession: randomUUID(),
  bobSession: randomUUID(),
  carolDocument: randomUUID(),
  daveDocument: randomUUID(),
};

type Role = 'anon' | 'authenticated' | 'service_role';
type Outcome = { rows: Record<string, unknown>[]; rowCount: number } | { error: string; code: string };

/** Runs `text` as PostgREST would for a request with this role and these claims, then rolls back. */
async function asRole(role: Role, claims: Record<string, unknown>, text: string, values: unknown[] = []): Promise<Outcome> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${role}`);
    await client.query(`SELECT set_config('request.jwt.claims', $1, true)`, [JSON.stringify(claims)]);
    const result = await client.query(text, values);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  } catch (error) {
    const e = error as { message: string; code: string };
    return { error: e.message, code: e.code };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

const claimsOf = (userId: string) => ({ sub: userId, role: 'authenticated', aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 3600 });
const as = (who: keyof typeof ids, text: string, values: unknown[] = []) => asRole('authenticated', claimsOf(ids[who]), text, values);
const asAnon = (text: string, values: unknown[] = []) => asRole('anon', { role: 'anon' }, text, values);

function rows(outcome: Outcome, what: string): Record<string, unknown>[] {
  if ('error' in outcome) throw new assert.Assertion({ message: `${what}: refused (${outcome.code}: ${outcome.error})` } as never);
  return outcome.rows;
}

/** The ids a read returned, sorted. */
async function idsRead(outcome: Promise<Outcome>, column = 'id'): Promise<string[]> {
  return rows(await outcome, 'read').map((r) => String(r[column])).sort();
}

function refused(outcome: Outcome, what: string, code?: string): void {
  assert.ok('error' in outcome, `${what}: expected a refusal, got ${'rowCount' in outcome ? `${outcome.rowCount} row(s)` : ''}`);
  // 42501: insufficient privilege (no column/table privilege, or an RLS WITH CHECK that failed)
  if (code && 'code' in outcome) assert.is(outcome.code, code, `${what}: ${outcome.error}`);
}

function changed(outcome: Outcome, what: string): number {
  if ('error' in outcome) throw new assert.Assertion({ message: `${what}: refused (${outcome.code}: ${outcome.error})` } as never);
  return outcome.rowCount;
}

const sorted = (...values: string[]) => [...values].sort();

test.before(async () => {
  t = await createTestDatabase();
  pool = new pg.Pool({ connectionString: t.url, max: 4 });
  const profile = (id: string, role: UserRole, email: string) => ({ id, email, full_name: email.split('@')[0], role, credits_remaining: '100.0000' });
  await t.db.insertInto('user_profiles').values([
    profile(ids.alice, 'user', 'alice@example.com'),
    profile(ids.bob, 'user', 'bob@example.com'),
    profile(ids.carol, 'creator', 'carol@example.com'),
    profile(ids.dave, 'creator', 'dave@example.com'),
    profile(ids.admin, 'admin', 'admin@example.com'),
  ]).execute();
  const clone = (id: string, creator: string, published: boolean) => ({ id, creator_id: creator, name: `clone ${id.slice(0, 4)}`, base_price: '1.0000', is_published: published, is_active: true });
  await t.db.insertInto('clones').values([clone(ids.carolPublished, ids.carol, true), clone(ids.carolDraft, ids.carol, false), clone(ids.davePublished, ids.dave, true)]).execute();
  const ended = new Date();
  await t.db.insertInto('sessions').values([
    { id: ids.aliceSession, user_id: ids.alice, clone_id: ids.carolPublished, session_type: 'chat' as const, status: 'ended' as const, end_time: ended, rate_per_minute: '1.0000', total_cost: '3.0000', settled_at: ended },
    { id: ids.bobSession, user_id: ids.bob, clone_id: ids.davePublished, session_type: 'chat' as const, status: 'ended' as const, end_time: ended, rate_per_minute: '1.0000', total_cost: '2.0000', settled_at: ended },
  ]).execute();
  await t.db.insertInto('messages').values([
    { id: randomUUID(), session_id: ids.aliceSession, sender_type: 'user', content: 'hello carol', cost_increment: '0.0000' },
    { id: randomUUID(), session_id: ids.bobSession, sender_type: 'user', content: 'hello dave', cost_increment: '0.0000' },
  ]).execute();
  await t.db.insertInto('session_events').values([
    { session_id: ids.aliceSession, version: 1, kind: 'started', at: ended, active_ms: 0 },
    { session_id: ids.bobSession, version: 1, kind: 'started', at: ended, active_ms: 0 },
  ]).execute();
  const settle = (session: string, user: string, creator: string, total: string, earning: string, fee: string) => [
    { session_id: session, account_kind: 'user' as const, account_id: user, amount: `-${total}`, kind: 'session_charge' as const },
    { session_id: session, account_kind: 'creator' as const, account_id: creator, amount: earning, kind: 'creator_earning' as const },
    { session_id: session, account_kind: 'platform' as const, account_id: null, amount: fee, kind: 'platform_fee' as const },
  ];
  await t.db.insertInto('ledger_entries').values([
    ...settle(ids.aliceSession, ids.alice, ids.carol, '3.0000', '2.4000', '0.6000'),
    ...settle(ids.bobSession, ids.bob, ids.dave, '2.0000', '1.6000', '0.4000'),
  ]).execute();
  await t.db.insertInto('ledger_adjustments').values({
    idempotency_key: 'refund-1', request_hash: 'h', session_id: ids.aliceSession, user_id: ids.alice, creator_id: ids.carol,
    amount: '1.0000', reason: 'goodwill', author_id: ids.admin,
  }).execute();
  const document = (id: string, clone: string) => ({ id, clone_id: clone, title: 'notes', file_name: 'notes.md', file_path: `docs/${id}`, file_type: 'text/markdown', file_size_bytes: 10 });
  await t.db.insertInto('documents').values([document(ids.carolDocument, ids.carolPublished), document(ids.daveDocument, ids.davePublished)]).execute();
  await t.db.insertInto('document_chunks').values([
    { document_id: ids.carolDocument, content: 'carol knows', chunk_index: 0 },
    { document_id: ids.daveDocument, content: 'dave knows', chunk_index: 0 },
  ]).execute();
  const today = new Date().toISOString().slice(0, 10);
  await t.db.insertInto('user_analytics').values([
    { user_id: ids.alice, date: today, sessions_count: 1, total_spent: '3.0000' },
    { user_id: ids.bob, date: today, sessions_count: 1, total_spent: '2.0000' },
  ]).execute();
  await t.db.insertInto('creator_analytics').values([
    { creator_id: ids.carol, clone_id: ids.carolPublished, date: today, total_earnings: '2.4000', sessions_count: 1 },
    { creator_id: ids.dave, clone_id: ids.davePublished, date: today, total_earnings: '1.6000', sessions_count: 1 },
  ]).execute();
});

test.after(async () => {
  await pool?.end();
  await t?.drop();
});

test('every table of the public schema has row-level security on (the migrator tables: no client privilege at all)', async () => {
  const { rows: tables } = await sql<{ relname: string; relrowsecurity: boolean }>`
    SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname
  `.execute(t.db);
  assert.ok(tables.length >= 13);
  for (const { relname, relrowsecurity } of tables) {
    if (relname.startsWith('kysely_')) continue;
    assert.ok(relrowsecurity, `${relname} has no row-level security`);
  }
  const { rows: grants } = await sql<{ table_name: string; grantee: string }>`
    SELECT table_name, grantee FROM information_schema.role_table_grants
    WHERE table_schema = 'public' AND table_name LIKE 'kysely_%' AND grantee IN ('anon', 'authenticated', 'PUBLIC')
  `.execute(t.db);
  assert.equal(grants, []);
});

test('no client role may write a money column: the write privileges they hold are exactly the personal ones', async () => {
  const { rows: privileges } = await sql<{ grantee: string; table_name: string; column_name: string; privilege_type: string }>`
    SELECT grantee, table_name, column_name, privilege_type FROM information_schema.column_privileges
    WHERE table_schema = 'public' AND grantee IN ('anon', 'authenticated') AND privilege_type IN ('INSERT', 'UPDATE')
    ORDER BY grantee, table_name, privilege_type, column_name
  `.execute(t.db);
  const held = privileges.map((p) => `${p.grantee} ${p.privilege_type} ${p.table_name}.${p.column_name}`).sort();
  const expected = [
    ...['full_name', 'preferences', 'timezone', 'language', 'avatar_url'].map((c) => `authenticated UPDATE user_profiles.${c}`),
    ...['id', 'creator_id', 'name', 'description', 'bio', 'avatar_url', 'category', 'expertise_areas', 'base_price', 'personality_traits', 'is_published', 'is_active'].map((c) => `authenticated INSERT clones.${c}`),
    ...['name', 'description', 'bio', 'avatar_url', 'category', 'expertise_areas', 'base_price', 'personality_traits', 'is_published', 'is_active'].map((c) => `authenticated UPDATE clones.${c}`),
    ...['user_rating', 'user_feedback'].map((c) => `authenticated UPDATE sessions.${c}`),
    ...['id', 'clone_id', 'title', 'file_name', 'file_path', 'file_type', 'file_size_bytes'].map((c) => `authenticated INSERT documents.${c}`),
    'authenticated UPDATE documents.title',
  ].sort();
  assert.equal(held, expected);
  const { rows: deletes } = await sql<{ grantee: string; table_name: string }>`
    SELECT grantee, table_name FROM information_schema.role_table_grants
    WHERE table_schema = 'public' AND grantee IN ('anon', 'authenticated') AND privilege_type IN ('DELETE', 'TRUNCATE')
  `.execute(t.db);
  assert.equal(deletes.map((d) => `${d.grantee} ${d.table_name}`), ['authenticated documents']);
});

test('anon reads published, active clones and nothing else', async () => {
  assert.equal(await idsRead(asAnon('SELECT id FROM clones')), sorted(ids.carolPublished, ids.davePublished));
  for (const table of ['user_profiles', 'sessions', 'messages', 'ledger_entries', 'ledger_adjustments', 'documents', 'document_chunks', 'user_analytics', 'creator_analytics', 'session_events']) {
    refused(await asAnon(`SELECT * FROM ${table}`), `anon reads ${table}`, '42501');
  }
  refused(await asAnon(`UPDATE clones SET name = 'x'`), 'anon edits a clone', '42501');
  refused(await asAnon(`INSERT INTO user_profiles (id, email) VALUES ($1, 'x@y.z')`, [randomUUID()]), 'anon signs itself up', '42501');
  refused(await asAnon('SELECT * FROM creator_session_totals()'), 'anon reads creator totals', '42501');
});

test('a user reads their own profile, sessions, messages, events, analytics and ledger entries, and no one else\'s', async () => {
  assert.equal(await idsRead(as('alice', 'SELECT id FROM user_profiles')), [ids.alice]);
  assert.equal(await idsRead(as('alice', 'SELECT id FROM sessions')), [ids.aliceSession]);
  assert.equal(await idsRead(as('alice', 'SELECT session_id FROM messages'), 'session_id'), [ids.aliceSession]);
  assert.equal(await idsRead(as('alice', 'SELECT session_id FROM session_events'), 'session_id'), [ids.aliceSession]);
  assert.equal(await idsRead(as('alice', 'SELECT user_id FROM user_analytics'), 'user_id'), [ids.alice]);
  const ledger = rows(await as('alice', 'SELECT kind, amount, account_id FROM ledger_entries'), 'ledger');
  assert.equal(ledger.map((r) => [r.kind, r.amount, r.account_id]), [['session_charge', '-3.0000', ids.alice]]);
  // published clones, not a creator's draft
  assert.equal(await idsRead(as('alice', 'SELECT id FROM clones')), sorted(ids.carolPublished, ids.davePublished));
  for (const table of ['creator_analytics', 'ledger_adjustments', 'documents', 'document_chunks']) {
    assert.equal(rows(await as('alice', `SELECT * FROM ${table}`), table), [], `alice reads ${table}`);
  }
  assert.equal(rows(await as('alice', 'SELECT * FROM creator_session_totals()'), 'totals'), []);
  // with no claims at all the authenticated role sees no one's rows
  assert.equal(rows(await asRole('authenticated', {}, 'SELECT id FROM user_profiles'), 'no claims'), []);
});

test('a user cannot raise their credits, change their role or tier, or touch anyone else\'s profile', async () => {
  for (const assignment of ["credits_remaining = 1000000", "total_spent = 0", "role = 'admin'", "subscription_tier = 'enterprise'", 'credits_version = 0', "email = 'new@example.com'", 'deleted_at = NULL']) {
    refused(await as('alice', `UPDATE user_profiles SET ${assignment} WHERE id = $1`, [ids.alice]), `alice sets ${assignment}`, '42501');
  }
  assert.is(changed(await as('alice', `UPDATE user_profiles SET full_name = 'Alice A.', preferences = '{"theme":"dark"}' WHERE id = $1`, [ids.alice]), 'own name'), 1);
  assert.is(changed(await as('alice', `UPDATE user_profiles SET full_name = 'Bob?' WHERE id = $1`, [ids.bob]), 'bob\'s name'), 0);
  refused(await as('alice', `INSERT INTO user_profiles (id, email) VALUES ($1, 'twin@example.com')`, [randomUUID()]), 'alice makes a profile', '42501');
  refused(await as('alice', `DELETE FROM user_profiles WHERE id = $1`, [ids.alice]), 'alice deletes her profile', '42501');
});

test('a user rates their own sessions and writes no money: not a session total, a message, a ledger row or an analytics row', async () => {
  assert.is(changed(await as('alice', `UPDATE sessions SET user_rating = 5, user_feedback = 'great' WHERE id = $1`, [ids.aliceSession]), 'rate own'), 1);
  assert.is(changed(await as('alice', `UPDATE sessions SET user_rating = 1 WHERE id = $1`, [ids.bobSession]), 'rate bob\'s'), 0);
  for (const assignment of ["total_cost = 0", "status = 'active'", 'rate_per_minute = 0', 'settled_at = NULL', 'duration_minutes = 0']) {
    refused(await as('alice', `UPDATE sessions SET ${assignment} WHERE id = $1`, [ids.aliceSession]), `alice sets ${assignment}`, '42501');
  }
  refused(await as('alice', `INSERT INTO sessions (id, user_id, clone_id) VALUES ($1, $2, $3)`, [randomUUID(), ids.alice, ids.carolPublished]), 'alice opens a session', '42501');
  refused(await as('alice', `INSERT INTO messages (id, session_id, sender_type, content) VALUES ($1, $2, 'user', 'hi')`, [randomUUID(), ids.aliceSession]), 'alice writes a message', '42501');
  refused(await as('alice', `UPDATE messages SET cost_increment = 0`), 'alice zeroes message costs', '42501');
  refused(await as('alice', `DELETE FROM messages`), 'alice deletes messages', '42501');
  refused(
    await as('alice', `INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind) VALUES ($1, 'user', $2, 50, 'session_charge')`, [ids.aliceSession, ids.alice]),
    'alice inserts a ledger row',
    '42501',
  );
  refused(await as('alice', `UPDATE user_analytics SET total_spent = 0`), 'alice edits analytics', '42501');
  refused(await as('alice', `INSERT INTO ledger_adjustments (idempotency_key, request_hash, session_id, user_id, creator_id, amount, reason, author_id) VALUES ('k', 'h', $1, $2, $3, 100, 'me', $2)`, [ids.aliceSession, ids.alice, ids.carol]), 'alice refunds herself', '42501');
  refused(await as('alice', `INSERT INTO clones (creator_id, name) VALUES ($1, 'my clone')`, [ids.alice]), 'a user (not a creator) creates a clone', '42501');
  refused(await as('alice', 'SELECT public.tollgate_forget_user($1)', [ids.bob]), 'alice forgets bob', '42501');
});

test('a creator manages their own clones (never their totals) and nobody else\'s', async () => {
  assert.equal(await idsRead(as('carol', 'SELECT id FROM clones')), sorted(ids.carolPublished, ids.carolDraft, ids.davePublished));
  assert.is(changed(await as('carol', `UPDATE clones SET name = 'Dr. Carol', base_price = 2, is_published = true WHERE id = $1`, [ids.carolDraft]), 'own clone'), 1);
  assert.is(changed(await as('carol', `UPDATE clones SET name = 'mine now' WHERE id = $1`, [ids.davePublished]), 'dave\'s clone'), 0);
  for (const assignment of ['total_earnings = 1000', 'total_sessions = 1000', 'average_rating = 5', 'total_ratings = 1000', `creator_id = '${ids.dave}'`]) {
    refused(await as('carol', `UPDATE clones SET ${assignment} WHERE id = $1`, [ids.carolPublished]), `carol sets ${assignment}`, '42501');
  }
  const created = await as('carol', `INSERT INTO clones (creator_id, name, base_price) VALUES ($1, 'Carol II', 1.5) RETURNING id`, [ids.carol]);
  assert.is(rows(created, 'create own').length, 1);
  refused(await as('carol', `INSERT INTO clones (creator_id, name) VALUES ($1, 'for dave')`, [ids.dave]), 'carol creates a clone for dave', '42501');
  refused(await as('carol', `INSERT INTO clones (creator_id, name, total_earnings) VALUES ($1, 'rich', 1000)`, [ids.carol]), 'carol creates a clone with earnings', '42501');
  refused(await as('carol', `DELETE FROM clones WHERE id = $1`, [ids.carolDraft]), 'carol deletes a clone', '42501');
});

test('a creator manages their clones\' documents and reads their chunks; the ingestion fields are the service\'s', async () => {
  assert.equal(await idsRead(as('carol', 'SELECT id FROM documents')), [ids.carolDocument]);
  assert.equal(rows(await as('carol', 'SELECT content FROM document_chunks'), 'chunks').map((r) => r.content), ['carol knows']);
  const document = { title: 'more', file_name: 'more.md', file_type: 'text/markdown', size: 5 };
  const insert = (clone: string) =>
    as('carol', `INSERT INTO documents (clone_id, title, file_name, file_path, file_type, file_size_bytes) VALUES ($1, $2, $3, $4, $5, $6)`, [clone, document.title, document.file_name, `docs/${randomUUID()}`, document.file_type, document.size]);
  assert.is(changed(await insert(ids.carolPublished), 'own clone\'s document'), 1);
  refused(await insert(ids.davePublished), 'a document on dave\'s clone', '42501');
  assert.is(changed(await as('carol', `UPDATE documents SET title = 'renamed' WHERE id = $1`, [ids.carolDocument]), 'rename own'), 1);
  assert.is(changed(await as('carol', `UPDATE documents SET title = 'renamed' WHERE id = $1`, [ids.daveDocument]), 'rename dave\'s'), 0);
  refused(await as('carol', `UPDATE documents SET processing_status = 'completed', chunk_count = 99 WHERE id = $1`, [ids.carolDocument]), 'carol marks it processed', '42501');
  refused(await as('carol', `INSERT INTO document_chunks (document_id, content, chunk_index) VALUES ($1, 'injected', 7)`, [ids.carolDocument]), 'carol writes a chunk', '42501');
  assert.is(changed(await as('carol', `DELETE FROM documents WHERE id = $1`, [ids.daveDocument]), 'delete dave\'s'), 0);
  assert.is(changed(await as('carol', `DELETE FROM documents WHERE id = $1`, [ids.carolDocument]), 'delete own'), 1);
  assert.equal(rows(await as('alice', 'SELECT * FROM documents'), 'a user reads documents'), []);
});

test('a creator reads their earnings: creator_analytics, their ledger entries, and their clones\' settled totals without the user', async () => {
  assert.equal(await idsRead(as('carol', 'SELECT clone_id FROM creator_analytics'), 'clone_id'), [ids.carolPublished]);
  const ledger = rows(await as('carol', 'SELECT kind, amount FROM ledger_entries'), 'ledger');
  assert.equal(ledger.map((r) => [r.kind, r.amount]), [['creator_earning', '2.4000']]);
  const totals = rows(await as('carol', 'SELECT * FROM creator_session_totals()'), 'totals');
  assert.equal(totals.map((r) => [r.session_id, r.total_cost, r.creator_earning]), [[ids.aliceSession, '3.0000', '2.4000']]);
  assert.not.ok('user_id' in totals[0]!, 'the user is not named');
  // the raw sessions, their messages and the user's profile stay the user's
  assert.equal(rows(await as('carol', 'SELECT * FROM sessions'), 'sessions'), []);
  assert.equal(rows(await as('carol', 'SELECT * FROM messages'), 'messages'), []);
  assert.equal(await idsRead(as('carol', 'SELECT id FROM user_profiles')), [ids.carol]);
  assert.equal(rows(await as('dave', 'SELECT session_id FROM creator_session_totals()'), 'dave').map((r) => r.session_id), [ids.bobSession]);
});

test('an admin reads every money table, and writes no money either', async () => {
  const all = async (table: string) => Number((await t.db.selectFrom(table as 'sessions').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  for (const table of ['user_profiles', 'clones', 'sessions', 'messages', 'ledger_entries', 'ledger_adjustments', 'session_events', 'user_analytics', 'creator_analytics', 'documents', 'document_chunks']) {
    const seen = rows(await as('admin', `SELECT count(*)::int AS n FROM ${table}`), table)[0]!.n;
    assert.is(seen, await all(table), `admin reads all of ${table}`);
  }
  refused(await as('admin', `UPDATE user_profiles SET credits_remaining = 5 WHERE id = $1`, [ids.alice]), 'admin sets credits', '42501');
  refused(await as('admin', `INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind) VALUES ($1, 'platform', NULL, 1, 'platform_fee')`, [ids.bobSession]), 'admin inserts a ledger row', '42501');
  // an admin changes their own profile only, like anyone
  assert.is(changed(await as('admin', `UPDATE user_profiles SET full_name = 'x' WHERE id = $1`, [ids.alice]), 'admin renames alice'), 0);
});

test('the service role bypasses row-level security, as Supabase made it', async () => {
  const seen = rows(await asRole('service_role', { role: 'service_role' }, 'SELECT count(*)::int AS n FROM ledger_entries'), 'service')[0]!.n;
  assert.is(seen, 6);
});

test.run();
