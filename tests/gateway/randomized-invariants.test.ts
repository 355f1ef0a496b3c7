import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { seededRandom } from '../../scripts/lib/seeded-random.ts';
import { createClone, createUser, request, startSystem, waitFor, type TestClient, type TestSystem, startInRoom } from '../support/system.ts';

// A seeded, replayable run (TEST_SEED=… to replay): several users act at random, each request sent one to three
// times at once, then RELIABILITY.md's invariants are checked in Postgres.
const seed = Number(process.env.TEST_SEED ?? Date.now() % 2 ** 31);
console.log(`randomized-invariants: TEST_SEED=${seed}`);

const draws = seededRandom(seed);
const random = draws.next;
const pick = draws.pick;

let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { AI_PRICE_PER_1K_TOKENS: '0.0300', IDLE_PAUSE_MS: '400', PAUSED_END_MS: '600', EVENT_BURST: '1000', EVENTS_PER_SECOND: '1000' } });
});
test.after(async () => {
  await system?.close();
});

test(`random sessions keep every invariant (seed ${seed})`, async () => {
  const clones = await Promise.all(['0.5000', '7.5000', '60.0000', '120.0000'].map((rate) => createClone(system, rate)));
  const users: Array<{ id: string; credits: string; client: TestClient; sessions: string[] }> = [];
  for (let i = 0; i < 6; i++) {
    const credits = formatMoney(BigInt(Math.floor(random() * 40_000) + 2_000));
    const id = await createUser(system, credits);
    users.push({ id, credits, client: await system.connect(id), sessions: [] });
  }
  const ackedMessages = new Set<string>();
  let duplicatesAbsorbed = 0;
  let operations = 0;

  const send = async <T>(times: number, fn: () => Promise<T>): Promise<T[]> => Promise.all(Array.from({ length: times }, fn));

  await Promise.all(
    users.map(async (user) => {
      for (let step = 0; step < 25; step++) {
        operations++;
        const times = 1 + Math.floor(random() * 3);
        const roll = random();
        const sessionId = user.sessions.length > 0 ? pick(user.sessions) : undefined;
        if (roll < 0.25 || !sessionId) {
          const answers = await startInRoom(system, user.client, { cloneId: pick(clones).cloneId, type: pick(['chat', 'voice', 'video'] as const) });
          if (answers.ok) user.sessions.push(answers.session.id);
        } else if (roll < 0.6) {
          const clientMessageId = `m-${Math.floor(random() * 6)}`;
          const answers = await send(times, () => request(user.client, 'message:send', { sessionId, clientMessageId, content: `hello ${clientMessageId}` }));
          const ids = answers.flatMap((a) => (a.ok ? [a.message.id] : []));
          for (const id of ids) {
            if (ackedMessages.has(id)) duplicatesAbsorbed++;
            ackedMessages.add(id);
          }
        } else if (roll < 0.75) {
          await send(times, () => request(user.client, 'session:pause', { sessionId }));
        } else if (roll < 0.9) {
          await send(times, () => request(user.client, 'session:resume', { sessionId }));
        } else {
          await send(times, () => request(user.client, 'session:end', { sessionId }));
        }
        if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 60)));
      }
    }),
  );
  for (const user of users) {
    for (const sessionId of user.sessions) await request(user.client, 'session:end', { sessionId });
  }
  const allSessions = users.flatMap((u) => u.sessions);
  await waitFor(async () => {
    const row = await system.database.db.selectFrom('sessions').select((eb) => eb.fn.countAll<string>().as('n')).where('id', 'in', allSessions).where('settled_at', 'is not', null).executeTakeFirstOrThrow();
    return Number(row.n) === allSessions.length;
  }, 20_000, 'every session to settle');
  // replies still streaming when their session ended are stored too
  await waitFor(async () => {
    const row = await system.database.db.selectFrom('messages').select((eb) => eb.fn.countAll<string>().as('n')).where('sender_type', '=', 'user').executeTakeFirstOrThrow();
    return Number(row.n) === ackedMessages.size;
  }, 10_000, 'every acknowledged message to be stored');

  const db = system.database.db;
  // 1. every session's ledger sums to 0 (three entries each, one settlement each)
  const perSession = await sql<{ session_id: string; n: number; total: string }>`select session_id, count(*)::int as n, sum(amount)::text as total from ledger_entries where session_id in (${sql.join(allSessions)}) group by session_id`.execute(db);
  assert.is(perSession.rows.length, allSessions.length);
  for (const r of perSession.rows) {
    assert.is(r.n, 3);
    assert.is(parseMoney(r.total), 0n);
  }
  // 2. Σ debits = Σ session totals = Σ earnings + Σ fees
  const totals = await sql<{ debits: string; sessions: string; earnings: string; fees: string }>`
    select (select coalesce(-sum(amount), 0) from ledger_entries where kind = 'session_charge')::text as debits,
           (select coalesce(sum(total_cost), 0) from sessions)::text as sessions,
           (select coalesce(sum(amount), 0) from ledger_entries where kind = 'creator_earning')::text as earnings,
           (select coalesce(sum(amount), 0) from ledger_entries where kind = 'platform_fee')::text as fees`.execute(db);
  const t = totals.rows[0]!;
  assert.is(parseMoney(t.debits), parseMoney(t.sessions));
  assert.is(parseMoney(t.debits), parseMoney(t.earnings) + parseMoney(t.fees));
  // 4. no balance below zero, and each user paid exactly what their sessions cost
  for (const user of users) {
    const row = await db.selectFrom('user_profiles').select(['credits_remaining', 'total_spent']).where('id', '=', user.id).executeTakeFirstOrThrow();
    const spent = await db.selectFrom('sessions').select((eb) => eb.fn.sum<string>('total_cost').as('s')).where('user_id', '=', user.id).executeTakeFirstOrThrow();
    assert.ok(parseMoney(row.credits_remaining) >= 0n);
    assert.is(parseMoney(user.credits) - parseMoney(row.credits_remaining), parseMoney(spent.s ?? '0'));
    assert.is(row.total_spent, formatMoney(parseMoney(spent.s ?? '0')));
  }
  // 3 + 5. every acknowledged message stored exactly once
  const stored = await db.selectFrom('messages').select('id').where('sender_type', '=', 'user').execute();
  assert.equal(new Set(stored.map((m) => m.id)), ackedMessages);
  console.log(`randomized-invariants: ${operations} operations, ${allSessions.length} sessions, ${ackedMessages.size} messages, ${duplicatesAbsorbed} duplicates absorbed`);
  assert.ok(duplicatesAbsorbed > 0, 'the run repeated some messages');
  for (const user of users) user.client.disconnect();
});

test.run();
