import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { createParties, sessionHeader, stateJob, type Parties, applySessionState } from '../billing/fixtures.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;
let alice: Parties;
let bob: Parties;
/** All settled sessions made in before(), by id. */
const made: { id: string; userId: string; cloneId: string; creatorId: string; end: string; type: string; reason: string }[] = [];

test.before(async () => {
  h = await startLedgerApp();
  alice = await createParties(h.database.db, { credits: '10000.0000' });
  bob = await createParties(h.database.db, { credits: '10000.0000' });
  // 30 sessions over three days, two users; several share an end instant (the keyset's tie-break on id)
  for (let i = 0; i < 30; i++) {
    const parties = i % 3 === 0 ? bob : alice;
    const day = 1 + (i % 3);
    const end = `2025-03-0${day}T12:${String(i % 5).padStart(2, '0')}:00.000Z`;
    const start = new Date(Date.parse(end) - 5 * 60_000).toISOString();
    const type = (['chat', 'voice', 'video'] as const)[i % 3 === 1 ? 1 : i % 7 === 0 ? 2 : 0];
    const reason = i % 4 === 0 ? 'idle_timeout' : 'user';
    const { sessionId } = await settledSession(h.database, h.config, parties, { start, end, type, reason });
    made.push({ id: sessionId, userId: parties.userId, cloneId: parties.cloneId, creatorId: parties.creatorId, end, type, reason });
  }
});
test.after(async () => {
  await h?.close();
});

/** Newest first by (end_time desc, id desc). */
const expectedOrder = (rows: typeof made) =>
  [...rows].sort((a, b) => (a.end === b.end ? (a.id < b.id ? 1 : -1) : a.end < b.end ? 1 : -1)).map((r) => r.id);

async function allPages(query: string, limit: number, from: string | null = null): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = from;
  let pages = 0;
  do {
    const page: { sessions: { id: string }[]; nextCursor: string | null } = await h.getJson(
      `/api/ledger/sessions?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    pages += 1;
    assert.ok(page.sessions.length <= limit);
    ids.push(...page.sessions.map((s) => s.id));
    cursor = page.nextCursor;
  } while (cursor && pages < 100);
  return { ids, pages };
}

test('a session summary has every field, money with four places and ISO times', async () => {
  const { sessions } = await h.getJson('/api/ledger/sessions?limit=500');
  const one = sessions.find((s: { id: string }) => s.id === made[0]!.id);
  const user = await h.database.db.selectFrom('user_profiles').select('email').where('id', '=', bob.userId).executeTakeFirstOrThrow();
  const clone = await h.database.db.selectFrom('clones').select('name').where('id', '=', bob.cloneId).executeTakeFirstOrThrow();
  assert.equal(one, {
    id: made[0]!.id,
    userId: bob.userId,
    userEmail: user.email,
    cloneId: bob.cloneId,
    cloneName: clone.name,
    creatorId: bob.creatorId,
    type: 'video',
    status: 'ended',
    startTime: '2025-03-01T11:55:00.000Z',
    endTime: '2025-03-01T12:00:00.000Z',
    activeMs: 300_000,
    durationMinutes: 5,
    ratePerMinute: '1.5000',
    totalCost: '7.5000',
    messageCount: 0,
    endReason: 'idle_timeout',
    settledAt: one.settledAt,
    userRating: null,
  });
  assert.match(one.settledAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('sessions come newest first by (end_time, id); the default page is 50', async () => {
  const page = await h.getJson('/api/ledger/sessions');
  assert.equal(page.sessions.map((s: { id: string }) => s.id), expectedOrder(made));
  assert.is(page.nextCursor, null);
});

test('keyset pagination walks every session once, in order, for any page size', async () => {
  for (const limit of [1, 4, 7, 29, 30]) {
    const { ids, pages } = await allPages('', limit);
    assert.equal(ids, expectedOrder(made), `limit ${limit}`);
    assert.is(pages, Math.ceil(made.length / limit), `limit ${limit}`);
  }
});

test('a session settled after page 1 was read neither repeats nor shifts the later pages', async () => {
  const first = await h.getJson('/api/ledger/sessions?limit=10');
  const late = await settledSession(h.database, h.config, alice, { start: '2025-03-03T13:00:00.000Z' });
  try {
    const rest = await allPages('', 10, first.nextCursor);
    const seen = [...first.sessions.map((s: { id: string }) => s.id), ...rest.ids];
    assert.equal(seen, expectedOrder(made), 'the newer session sorts before the cursor and is not in later pages');
  } finally {
    made.push({ id: late.sessionId, userId: alice.userId, cloneId: alice.cloneId, creatorId: alice.creatorId, end: '2025-03-03T13:10:00.000Z', type: 'chat', reason: 'user' });
  }
});

test('keyset pagination keeps microsecond end times apart', async () => {
  const parties = await createParties(h.database.db, { credits: '1000.0000' });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { sessionId } = await settledSession(h.database, h.config, parties, { start: '2025-04-01T09:00:00.000Z' });
    ids.push(sessionId);
  }
  // end_time .000001, .000002, .000003 after the same millisecond: a millisecond cursor would skip or repeat them
  for (const [i, id] of ids.entries()) {
    await sql`UPDATE sessions SET end_time = end_time + make_interval(secs => ${(i + 1) / 1e6}) WHERE id = ${id}`.execute(h.database.db);
  }
  const { ids: paged } = await allPages(`&userId=${parties.userId}`, 1);
  assert.equal(paged, [...ids].reverse());
  const { rows } = await sql<{ id: string; end: string }>`
    SELECT id, to_char(end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS end FROM sessions WHERE user_id = ${parties.userId}
  `.execute(h.database.db);
  for (const row of rows) {
    made.push({ id: row.id, userId: parties.userId, cloneId: parties.cloneId, creatorId: parties.creatorId, end: row.end, type: 'chat', reason: 'user' });
  }
});

test('filters: user, clone, creator, type, end reason and the end-time range (to exclusive)', async () => {
  const only = async (query: string, keep: (r: (typeof made)[number]) => boolean) => {
    const { ids } = await allPages(query, 500);
    assert.equal(ids, expectedOrder(made.filter(keep)), query);
    assert.ok(ids.length > 0, `${query} matches something`);
  };
  await only(`&userId=${bob.userId}`, (r) => r.userId === bob.userId);
  await only(`&cloneId=${alice.cloneId}`, (r) => r.cloneId === alice.cloneId);
  await only(`&creatorId=${alice.creatorId}`, (r) => r.creatorId === alice.creatorId);
  await only('&type=voice', (r) => r.type === 'voice');
  await only('&endReason=idle_timeout', (r) => r.reason === 'idle_timeout');
  await only('&from=2025-03-02&to=2025-03-03', (r) => r.end >= '2025-03-02' && r.end < '2025-03-03');
  await only('&from=2025-03-01T12:02:00Z', (r) => r.end >= '2025-03-01T12:02:00.000Z');
  await only('&to=2025-03-01T12:02:00Z', (r) => r.end < '2025-03-01T12:02:00.000Z');
  await only('&from=2025-03-01T13:00:00%2B01:00&to=2025-03-01T13:03:00%2B01:00', (r) => r.end >= '2025-03-01T12:00:00.000Z' && r.end < '2025-03-01T12:03:00.000Z');
  await only(`&userId=${alice.userId}&type=chat&endReason=user&from=2025-03-02`, (r) => r.userId === alice.userId && r.type === 'chat' && r.reason === 'user' && r.end >= '2025-03-02');
  const none = await h.getJson(`/api/ledger/sessions?userId=${randomUUID()}`);
  assert.equal(none, { sessions: [], nextCursor: null });
});

test('sessions not settled yet are not listed', async () => {
  const header = sessionHeader(alice);
  await applySessionState(h.database.db, stateJob(header, { status: 'active', version: 1 }));
  const { ids } = await allPages('', 500);
  assert.not.ok(ids.includes(header.sessionId));
  const detail = await h.getJson(`/api/ledger/sessions/${header.sessionId}`);
  assert.is(detail.session.settledAt, null);
  assert.is(detail.check.consistent, false);
  assert.match(detail.check.note, /not settled/);
  assert.equal(detail.intervals, [{ start: '2025-03-01T10:00:00.000Z', end: null, activeMs: 0 }]);
});

test('an unknown session id is 404 not_found', async () => {
  const response = await h.request({ method: 'GET', url: `/api/ledger/sessions/${randomUUID()}` });
  assert.is(response.statusCode, 404);
  assert.is(response.json().error.code, 'not_found');
});

test.run();
