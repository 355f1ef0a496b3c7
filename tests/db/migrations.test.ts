import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import pg from 'pg';
import { ensureDatabaseExists, quoteIdentifier, withDatabase } from '#shared/db/database.ts';
import { migrateDown, migrateToLatest, migrations } from '#shared/db/migrator.ts';
import { DEMO_IDS, seedDemoData } from '../../scripts/lib/seed-demo-data.ts';
import { createTestDatabase, testDatabaseBaseUrl, type TestDatabase } from '../support/database.ts';

let t: TestDatabase;

test.before(async () => {
  t = await createTestDatabase();
});
test.after(async () => {
  await t?.drop();
});

/** The columns of each table, as schema.ts declares them. */
const EXPECTED_COLUMNS: Record<string, string[]> = {
  user_profiles: [
    'id', 'email', 'full_name', 'role', 'subscription_tier', 'credits_remaining', 'credits_version', 'total_spent',
    'preferences', 'timezone', 'language', 'avatar_url', 'created_at', 'updated_at', 'last_login', 'deleted_at',
  ],
  clones: [
    'id', 'creator_id', 'name', 'description', 'bio', 'avatar_url', 'category', 'expertise_areas', 'base_price',
    'personality_traits', 'is_published', 'is_active', 'total_sessions', 'total_earnings', 'average_rating',
    'total_ratings', 'created_at', 'updated_at',
  ],
  sessions: [
    'id', 'user_id', 'clone_id', 'session_type', 'status', 'start_time', 'end_time', 'duration_minutes',
    'rate_per_minute', 'total_cost', 'message_count', 'user_rating', 'user_feedback', 'state_version', 'active_ms',
    'end_reason', 'settled_at', 'settled_credits_version', 'checkpoint_at', 'checkpoint_cost', 'created_at', 'updated_at',
  ],
  messages: [
    'id', 'session_id', 'sender_type', 'content', 'cost_increment', 'tokens_used', 'client_message_id', 'created_at',
    'citations',
  ],
  documents: [
    'id', 'clone_id', 'title', 'file_name', 'file_path', 'file_type', 'file_size_bytes', 'processing_status',
    'chunk_count', 'created_at', 'updated_at', 'failure_reason', 'embedding_model', 'embedding_dimensions',
  ],
  document_chunks: ['id', 'document_id', 'content', 'chunk_index', 'embedding', 'doc_metadata', 'created_at'],
  user_analytics: [
    'user_id', 'date', 'sessions_count', 'messages_sent', 'total_duration_minutes', 'total_spent', 'documents_uploaded',
  ],
  creator_analytics: [
    'creator_id', 'clone_id', 'date', 'total_earnings', 'sessions_count', 'average_rating', 'user_retention_rate',
  ],
  ledger_entries: ['id', 'session_id', 'account_kind', 'account_id', 'amount', 'kind', 'created_at', 'adjustment_id'],
  session_events: ['id', 'session_id', 'version', 'kind', 'at', 'active_ms', 'reason', 'created_at'],
  ledger_adjustments: [
    'id', 'idempotency_key', 'request_hash', 'session_id', 'user_id', 'creator_id', 'amount', 'reason', 'author_id', 'created_at',
  ],
  money_movements: ['id', 'kind', 'user_id', 'reference', 'credits', 'amount_minor', 'currency', 'created_at'],
  movement_entries: ['id', 'movement_id', 'account_kind', 'account_id', 'amount', 'kind', 'created_at'],
  credit_purchases: [
    'id', 'user_id', 'pack_id', 'request_key', 'checkout_session_id', 'checkout_url', 'payment_intent_id', 'amount_minor', 'currency',
    'credits', 'status', 'reversed_minor', 'created_at', 'paid_at',
  ],
  stripe_events: ['id', 'type', 'received_at'],
  subscriptions: ['stripe_subscription_id', 'user_id', 'tier', 'status', 'current_period_end', 'event_created', 'updated_at'],
  payout_accounts: ['creator_id', 'stripe_account_id', 'updated_at'],
  payouts: [
    'id', 'creator_id', 'period', 'credits', 'amount_minor', 'currency', 'stripe_account_id', 'status', 'transfer_id', 'failure',
    'created_at', 'updated_at',
  ],
};

async function columns(): Promise<Record<string, string[]>> {
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name NOT LIKE 'kysely_%'
  `.execute(t.db);
  const byTable: Record<string, string[]> = {};
  for (const row of rows) (byTable[row.table_name] ??= []).push(row.column_name);
  for (const list of Object.values(byTable)) list.sort();
  return byTable;
}

function sorted(expected: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, [...v].sort()]));
}

async function columnType(table: string, column: string): Promise<string> {
  const { rows } = await sql<{ type: string }>`
    SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
    WHERE attrelid = ${table}::regclass AND attname = ${column}
  `.execute(t.db);
  return rows[0]!.type;
}

async function pgError(run: () => Promise<unknown>): Promise<{ code?: string; constraint?: string }> {
  try {
    await run();
  } catch (error) {
    return error as { code?: string; constraint?: string };
  }
  throw new Error('expected the statement to be rejected');
}

test('migrations create the tables with exactly the columns of schema.ts', async () => {
  assert.equal(await columns(), sorted(EXPECTED_COLUMNS));
});

test('money columns are numeric(14,4); ratings numeric(3,2); embedding is vector or real[]', async () => {
  assert.is(await columnType('user_profiles', 'credits_remaining'), 'numeric(14,4)');
  assert.is(await columnType('sessions', 'total_cost'), 'numeric(14,4)');
  assert.is(await columnType('ledger_entries', 'amount'), 'numeric(14,4)');
  assert.is(await columnType('clones', 'average_rating'), 'numeric(3,2)');
  assert.is(await columnType('user_profiles', 'credits_version'), 'bigint');
  assert.is(await columnType('sessions', 'active_ms'), 'bigint');
  assert.ok(['vector', 'real[]'].includes(await columnType('document_chunks', 'embedding')));
});

test('migrations go down to zero and up again', async () => {
  const down = await migrateDown(t.db, 'all');
  assert.equal(
    down.map((r) => [r.migrationName, r.direction, r.status]),
    [
      ['0016-active-room-sessions', 'Down', 'Success'],
      ['0015-creator-payouts', 'Down', 'Success'],
      ['0014-subscriptions', 'Down', 'Success'],
      ['0013-money-movements', 'Down', 'Success'],
      ['0012-people-and-deletion', 'Down', 'Success'],
      ['0011-row-level-security', 'Down', 'Success'],
      ['0010-supabase-auth-compat', 'Down', 'Success'],
      ['0009-session-hot-updates', 'Down', 'Success'],
      ['0008-embedding-hnsw', 'Down', 'Success'],
      ['0007-document-ingestion', 'Down', 'Success'],
      ['0006-ledger-queries', 'Down', 'Success'],
      ['0005-audit-trail', 'Down', 'Success'],
      ['0004-session-checkpoints', 'Down', 'Success'],
      ['0003-settlement-credits-version', 'Down', 'Success'],
      ['0002-tollgate-ledger', 'Down', 'Success'],
      ['0001-product-schema', 'Down', 'Success'],
    ],
  );
  assert.equal(await columns(), {});
  const { rows: functions } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE 'tollgate_%'
  `.execute(t.db);
  assert.is(functions[0]!.n, 0, 'trigger functions dropped');

  const up = await migrateToLatest(t.db);
  assert.equal(up.map((r) => r.migrationName), Object.keys(migrations));
  assert.equal(await migrateToLatest(t.db), [], 'already up to date');

  const roomsIndexDown = await migrateDown(t.db, 1);
  assert.equal(roomsIndexDown.map((r) => r.migrationName), ['0016-active-room-sessions']);
  const payoutsDown = await migrateDown(t.db, 1);
  assert.equal(payoutsDown.map((r) => r.migrationName), ['0015-creator-payouts']);
  const subscriptionsDown = await migrateDown(t.db, 1);
  assert.equal(subscriptionsDown.map((r) => r.migrationName), ['0014-subscriptions']);
  const movementsDown = await migrateDown(t.db, 1);
  assert.equal(movementsDown.map((r) => r.migrationName), ['0013-money-movements']);
  const peopleDown = await migrateDown(t.db, 1);
  assert.equal(peopleDown.map((r) => r.migrationName), ['0012-people-and-deletion']);
  const rlsDown = await migrateDown(t.db, 1);
  assert.equal(rlsDown.map((r) => r.migrationName), ['0011-row-level-security']);
  const { rows: secured } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relrowsecurity
  `.execute(t.db);
  assert.is(secured[0]!.n, 0, 'row-level security off again');
  const compatDown = await migrateDown(t.db, 1);
  assert.equal(compatDown.map((r) => r.migrationName), ['0010-supabase-auth-compat']);
  const hotDown = await migrateDown(t.db, 1);
  assert.equal(hotDown.map((r) => r.migrationName), ['0009-session-hot-updates']);
  const hnswDown = await migrateDown(t.db, 1);
  assert.equal(hnswDown.map((r) => r.migrationName), ['0008-embedding-hnsw']);
  const ingestionDown = await migrateDown(t.db, 1);
  assert.equal(ingestionDown.map((r) => r.migrationName), ['0007-document-ingestion']);
  assert.not.ok((await columns()).documents?.includes('failure_reason'));
  assert.not.ok((await columns()).messages?.includes('citations'));
  const indexesDown = await migrateDown(t.db, 1);
  assert.equal(indexesDown.map((r) => r.migrationName), ['0006-ledger-queries']);
  const { rows: indexes } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'ledger_entries_session_id_created_at_idx'
  `.execute(t.db);
  assert.is(indexes[0]!.n, 0, 'ledger query indexes dropped');
  const auditDown = await migrateDown(t.db, 1);
  assert.equal(auditDown.map((r) => r.migrationName), ['0005-audit-trail']);
  assert.not.ok((await columns()).session_events);
  const checkpointsDown = await migrateDown(t.db, 1);
  assert.equal(checkpointsDown.map((r) => r.migrationName), ['0004-session-checkpoints']);
  assert.not.ok((await columns()).sessions?.includes('checkpoint_at'));
  const oneDown = await migrateDown(t.db, 1);
  assert.equal(oneDown.map((r) => r.migrationName), ['0003-settlement-credits-version']);
  assert.not.ok((await columns()).sessions?.includes('settled_credits_version'));
  const twoDown = await migrateDown(t.db, 1);
  assert.equal(twoDown.map((r) => r.migrationName), ['0002-tollgate-ledger']);
  assert.not.ok((await columns()).ledger_entries);
  await migrateToLatest(t.db);
  assert.equal(await columns(), sorted(EXPECTED_COLUMNS));
});

test('credits_remaining cannot go below zero', async () => {
  const id = randomUUID();
  await t.db.insertInto('user_profiles').values({ id, email: `${id}@t.local` }).execute();
  const error = await pgError(() =>
    t.db.updateTable('user_profiles').set({ credits_remaining: '-0.0001' }).where('id', '=', id).execute(),
  );
  assert.is(error.code, '23514');
  assert.is(error.constraint, 'user_profiles_credits_remaining_check');
  const row = await t.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', id).executeTakeFirstOrThrow();
  assert.is(row.credits_remaining, '100.0000', 'default 100');
});

test('credits_version bumps when the balance changes, and only then', async () => {
  const id = randomUUID();
  await t.db.insertInto('user_profiles').values({ id, email: `${id}@t.local` }).execute();
  const version = async () =>
    (await t.db.selectFrom('user_profiles').select('credits_version').where('id', '=', id).executeTakeFirstOrThrow())
      .credits_version;
  assert.is(await version(), '0');
  await t.db.updateTable('user_profiles').set({ credits_remaining: '99.5000' }).where('id', '=', id).execute();
  assert.is(await version(), '1');
  await t.db.updateTable('user_profiles').set({ full_name: 'Renamed' }).where('id', '=', id).execute();
  assert.is(await version(), '1', 'other columns do not bump it');
  await t.db.updateTable('user_profiles').set({ credits_remaining: '99.50' }).where('id', '=', id).execute();
  assert.is(await version(), '1', 'an equal amount is no change');
  await sql`UPDATE user_profiles SET credits_version = 42 WHERE id = ${id}`.execute(t.db);
  assert.is(await version(), '1', 'cannot be written directly');
  await t.db.updateTable('user_profiles').set({ credits_remaining: sql`credits_remaining - 1` }).where('id', '=', id).execute();
  assert.is(await version(), '2');
});

test('enumerations and ranges are checked by the database', async () => {
  const user = randomUUID();
  assert.is(
    (await pgError(() => sql`INSERT INTO user_profiles (id, email, role) VALUES (${user}, 'x@t.local', 'root')`.execute(t.db))).constraint,
    'user_profiles_role_check',
  );
  assert.is(
    (await pgError(() => sql`INSERT INTO user_profiles (id, email, subscription_tier) VALUES (${user}, 'x@t.local', 'gold')`.execute(t.db))).constraint,
    'user_profiles_subscription_tier_check',
  );
  await t.db.insertInto('user_profiles').values({ id: user, email: `${user}@t.local` }).execute();
  const clone = randomUUID();
  assert.is(
    (await pgError(() => sql`INSERT INTO clones (id, creator_id, name, average_rating) VALUES (${clone}, ${user}, 'c', 5.01)`.execute(t.db))).constraint,
    'clones_average_rating_check',
  );
  await t.db.insertInto('clones').values({ id: clone, creator_id: user, name: 'c' }).execute();
  const session = randomUUID();
  const insertSession = (column: string, value: string | number) =>
    sql`INSERT INTO sessions (id, user_id, clone_id, ${sql.ref(column)}) VALUES (${session}, ${user}, ${clone}, ${value})`.execute(t.db);
  assert.is((await pgError(() => insertSession('session_type', 'fax'))).constraint, 'sessions_session_type_check');
  assert.is((await pgError(() => insertSession('status', 'paused-ish'))).constraint, 'sessions_status_check');
  assert.is((await pgError(() => insertSession('user_rating', 6))).constraint, 'sessions_user_rating_check');
  assert.is((await pgError(() => insertSession('user_rating', 0))).constraint, 'sessions_user_rating_check');
  await insertSession('user_rating', 5);
  assert.is(
    (await pgError(() => sql`UPDATE sessions SET settled_at = now() WHERE id = ${session}`.execute(t.db))).constraint,
    'sessions_settled_ended_check',
  );
  assert.is(
    (await pgError(() => sql`INSERT INTO messages (id, session_id, sender_type, content) VALUES (${randomUUID()}, ${session}, 'bot', 'x')`.execute(t.db))).constraint,
    'messages_sender_type_check',
  );
  const doc = randomUUID();
  assert.is(
    (await pgError(() => sql`INSERT INTO documents (id, clone_id, title, file_name, file_path, file_type, file_size_bytes, processing_status) VALUES (${doc}, ${clone}, 't', 'f', 'p', 'txt', 1, 'done')`.execute(t.db))).constraint,
    'documents_processing_status_check',
  );
  // A platform fee has no account; a user charge must be a debit.
  assert.is(
    (await pgError(() => sql`INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind) VALUES (${session}, 'platform', ${user}, 1, 'platform_fee')`.execute(t.db))).constraint,
    'ledger_entries_shape_check',
  );
  assert.is(
    (await pgError(() => sql`INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind) VALUES (${session}, 'user', ${user}, 1, 'session_charge')`.execute(t.db))).constraint,
    'ledger_entries_shape_check',
  );
  await sql`INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind) VALUES (${session}, 'platform', NULL, 1, 'platform_fee')`.execute(t.db);
  assert.is(
    (await pgError(() => sql`INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind) VALUES (${session}, 'platform', NULL, 1, 'platform_fee')`.execute(t.db))).constraint,
    'ledger_entries_session_id_kind_key',
  );
});

test('deleting a session cascades to its messages; a user with sessions cannot be deleted', async () => {
  const user = randomUUID();
  const clone = randomUUID();
  const session = randomUUID();
  await t.db.insertInto('user_profiles').values({ id: user, email: `${user}@t.local` }).execute();
  await t.db.insertInto('clones').values({ id: clone, creator_id: user, name: 'c' }).execute();
  await t.db.insertInto('sessions').values({ id: session, user_id: user, clone_id: clone, session_type: 'chat', status: 'active' }).execute();
  await t.db.insertInto('messages').values({ id: randomUUID(), session_id: session, sender_type: 'user', content: 'hi' }).execute();
  assert.is((await pgError(() => t.db.deleteFrom('user_profiles').where('id', '=', user).execute())).code, '23503');
  await t.db.deleteFrom('sessions').where('id', '=', session).execute();
  const left = await t.db.selectFrom('messages').select('id').where('session_id', '=', session).execute();
  assert.is(left.length, 0);
  await t.db.deleteFrom('user_profiles').where('id', '=', user).execute();
  assert.is((await t.db.selectFrom('clones').select('id').where('id', '=', clone).execute()).length, 0, 'clone cascades');
});

test('a client message id is unique per session; AI messages without one never collide', async () => {
  const user = randomUUID();
  const clone = randomUUID();
  const session = randomUUID();
  await t.db.insertInto('user_profiles').values({ id: user, email: `${user}@t.local` }).execute();
  await t.db.insertInto('clones').values({ id: clone, creator_id: user, name: 'c' }).execute();
  await t.db.insertInto('sessions').values({ id: session, user_id: user, clone_id: clone, session_type: 'chat', status: 'active' }).execute();
  const message = (clientMessageId: string | null) => ({
    id: randomUUID(), session_id: session, sender_type: 'ai' as const, content: 'x', client_message_id: clientMessageId,
  });
  await t.db.insertInto('messages').values([message(null), message(null), message('c-1')]).execute();
  assert.is(
    (await pgError(() => t.db.insertInto('messages').values(message('c-1')).execute())).constraint,
    'messages_session_id_client_message_id_key',
  );
});

test('seeding is idempotent and creates the demo rows', async () => {
  await seedDemoData(t.db);
  const first = await sql<{ users: number; clones: number; docs: number; chunks: number }>`
    SELECT (SELECT count(*)::int FROM user_profiles WHERE email LIKE '%@demo.tollgate.test') AS users,
           (SELECT count(*)::int FROM clones WHERE creator_id = ${DEMO_IDS.creator}) AS clones,
           (SELECT count(*)::int FROM documents) AS docs,
           (SELECT count(*)::int FROM document_chunks WHERE embedding IS NULL) AS chunks
  `.execute(t.db);
  await t.db.updateTable('user_profiles').set({ credits_remaining: '42.0000' }).where('id', '=', DEMO_IDS.user).execute();
  await seedDemoData(t.db);
  const second = await sql`
    SELECT (SELECT count(*)::int FROM user_profiles WHERE email LIKE '%@demo.tollgate.test') AS users,
           (SELECT count(*)::int FROM clones WHERE creator_id = ${DEMO_IDS.creator}) AS clones,
           (SELECT count(*)::int FROM documents) AS docs,
           (SELECT count(*)::int FROM document_chunks WHERE embedding IS NULL) AS chunks
  `.execute(t.db);
  assert.equal(first.rows, [{ users: 4, clones: 4, docs: 3, chunks: 7 }]);
  assert.equal(second.rows, first.rows);
  const user = await t.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', DEMO_IDS.user).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '42.0000', 'existing rows are left alone');
  const published = await t.db
    .selectFrom('clones')
    .select(['base_price'])
    .where('creator_id', '=', DEMO_IDS.creator)
    .where('is_published', '=', true)
    .where('is_active', '=', true)
    .orderBy('base_price')
    .execute();
  assert.equal(published.map((c) => c.base_price), ['0.7500', '1.5000', '3.0000']);
});

test('date columns read back as YYYY-MM-DD strings', async () => {
  await seedDemoData(t.db);
  await t.db.insertInto('user_analytics').values({ user_id: DEMO_IDS.user, date: '2025-01-31' }).execute();
  const row = await t.db.selectFrom('user_analytics').select('date').where('user_id', '=', DEMO_IDS.user).executeTakeFirstOrThrow();
  assert.is(row.date, '2025-01-31');
});

test('ensureDatabaseExists creates a missing database once, even when raced', async () => {
  const name = `tollgate_test_${process.pid}_ensure_${randomBytes(4).toString('hex')}`;
  const url = withDatabase(testDatabaseBaseUrl(), name);
  const admin = new pg.Client({ connectionString: withDatabase(testDatabaseBaseUrl()) });
  await admin.connect();
  try {
    const created = await Promise.all([1, 2, 3, 4].map(() => ensureDatabaseExists(url)));
    assert.is(created.filter(Boolean).length, 1, `exactly one call created it: ${created}`);
    assert.is(await ensureDatabaseExists(url), false);
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    assert.is(found.rowCount, 1);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  }
});

test('0013 gives profiles from before it their opening balance: what their session entries do not explain', async () => {
  const down = await migrateDown(t.db, 4);
  assert.equal(down.map((r) => r.migrationName), ['0016-active-room-sessions', '0015-creator-payouts', '0014-subscriptions', '0013-money-movements']);
  const [rich, spender] = [randomUUID(), randomUUID()];
  await t.db.insertInto('user_profiles').values([
    { id: rich, email: `${rich}@example.com`, credits_remaining: '80.0000' },
    { id: spender, email: `${spender}@example.com`, role: 'creator', credits_remaining: '0.0000' },
  ]).execute();
  await migrateToLatest(t.db);
  const { rows } = await sql<{ user_id: string; kind: string; credits: string; entries: string }>`
    SELECT m.user_id, m.kind, m.credits::text, (SELECT string_agg(account_kind || ':' || amount, ' ' ORDER BY account_kind) FROM movement_entries e WHERE e.movement_id = m.id) AS entries
    FROM money_movements m WHERE m.user_id IN (${rich}, ${spender})
  `.execute(t.db);
  assert.equal(rows, [{ user_id: rich, kind: 'opening_balance', credits: '80.0000', entries: 'platform:-80.0000 user:80.0000' }]);
  // a profile made from now on gets its opening balance as it is created
  const later = randomUUID();
  await t.db.insertInto('user_profiles').values({ id: later, email: `${later}@example.com` }).execute();
  const { rows: opened } = await sql<{ credits: string }>`SELECT credits::text FROM money_movements WHERE reference = ${`opening:${later}`}`.execute(t.db);
  assert.equal(opened, [{ credits: '100.0000' }]);
});

test.run();
