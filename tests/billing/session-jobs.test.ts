import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRatio } from '#shared/money/money.ts';
import { settleSession } from '#billing/settle/settle-session.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createParties, messageJob, sessionHeader, settleJob, snapshot, stateJob, type Parties, applySessionState, storeMessage } from './fixtures.ts';

let t: TestDatabase;
let parties: Parties;

test.before(async () => {
  t = await createTestDatabase();
  parties = await createParties(t.db);
});
test.after(async () => {
  await t?.drop();
});

const sessionRow = (id: string) => t.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

test('the first job of a session creates its row from the header', async () => {
  const header = sessionHeader(parties, { type: 'voice', ratePerMinute: '2.2500', startTime: '2025-05-01T08:00:00+02:00' });
  assert.is(await applySessionState(t.db, stateJob(header, { status: 'active', version: 1, activeMs: 0 })), true);
  const row = await sessionRow(header.sessionId);
  assert.is(row.user_id, parties.userId);
  assert.is(row.clone_id, parties.cloneId);
  assert.is(row.session_type, 'voice');
  assert.is(row.rate_per_minute, '2.2500');
  assert.is(row.start_time.toISOString(), '2025-05-01T06:00:00.000Z');
  assert.is(row.status, 'active');
  assert.is(row.state_version, 1);
});

test('a stale session-state job never overwrites a newer state', async () => {
  const header = sessionHeader(parties);
  assert.is(await applySessionState(t.db, stateJob(header, { status: 'paused', version: 3, activeMs: 90_000 })), true);
  assert.is(await applySessionState(t.db, stateJob(header, { status: 'active', version: 2, activeMs: 60_000 })), false);
  assert.is(await applySessionState(t.db, stateJob(header, { status: 'active', version: 3, activeMs: 99_000 })), false);
  let row = await sessionRow(header.sessionId);
  assert.is(row.status, 'paused');
  assert.is(row.active_ms, '90000');
  assert.is(row.state_version, 3);

  assert.is(await applySessionState(t.db, stateJob(header, { status: 'active', version: 4, activeMs: 90_000 })), true);
  row = await sessionRow(header.sessionId);
  assert.is(row.status, 'active');
  assert.is(row.state_version, 4);
});

test('state jobs in shuffled order, each twice, end at the newest state', async () => {
  const header = sessionHeader(parties);
  const jobs = [1, 2, 3, 4, 5, 6].map((version) =>
    stateJob(header, {
      version,
      status: version % 2 ? 'active' : 'paused',
      activeMs: version * 1000,
      cost: `${version}.0000`,
      at: new Date(Date.UTC(2025, 2, 1, 10, 0, version)).toISOString(),
    }),
  );
  // every job twice, in a scrambled but fixed order (newest versions first, duplicates apart), all at once
  const shuffled = [...jobs, ...jobs].map((job, i) => ({ job, key: (i * 7) % 12 })).sort((a, b) => a.key - b.key).map((x) => x.job).reverse();
  await Promise.all(shuffled.map((job) => applySessionState(t.db, job)));
  const row = await sessionRow(header.sessionId);
  assert.is(row.state_version, 6);
  assert.is(row.status, 'paused');
  assert.is(row.active_ms, '6000');
  assert.is(row.checkpoint_cost, '6.0000', 'the latest checkpoint wins whatever the order');
});

test('a state job after the settlement changes nothing', async () => {
  const header = sessionHeader(parties);
  await settleSession(t.db, settleJob(header, { version: 3 }), parseRatio('0.20'));
  const before = await snapshot(t.db);
  assert.is(await applySessionState(t.db, stateJob(header, { status: 'active', version: 9, activeMs: 1 })), false);
  assert.equal(await snapshot(t.db), before);
});

test('a message job delivered twice stores the message once', async () => {
  const header = sessionHeader(parties);
  const job = messageJob(header, { content: 'what is a Bernoulli number?', tokensUsed: 12, costIncrement: '0.0120' });
  assert.is(await storeMessage(t.db, job), true);
  assert.is(await storeMessage(t.db, job), false);
  const rows = await t.db.selectFrom('messages').selectAll().where('session_id', '=', header.sessionId).execute();
  assert.equal(rows, [
    {
      id: job.message.id,
      session_id: header.sessionId,
      sender_type: 'user',
      content: 'what is a Bernoulli number?',
      cost_increment: '0.0120',
      tokens_used: 12,
      client_message_id: job.message.clientMessageId,
      citations: null,
      created_at: new Date('2025-03-01T10:01:00.000Z'),
    },
  ]);
});

test('a re-sent user message (new id, same client message id) is stored once', async () => {
  const header = sessionHeader(parties);
  const first = messageJob(header, { clientMessageId: 'client-1' });
  const resent = messageJob(header, { clientMessageId: 'client-1', content: 'again' });
  const results = await Promise.all([storeMessage(t.db, first), storeMessage(t.db, resent)]);
  assert.equal(results.filter(Boolean).length, 1);
  const rows = await t.db.selectFrom('messages').select('client_message_id').where('session_id', '=', header.sessionId).execute();
  assert.equal(rows, [{ client_message_id: 'client-1' }]);
});

test('AI messages without a client id are all stored', async () => {
  const header = sessionHeader(parties);
  for (let i = 0; i < 3; i++) {
    assert.ok(await storeMessage(t.db, messageJob(header, { senderType: 'ai', clientMessageId: null, content: `reply ${i}` })));
  }
  const rows = await t.db.selectFrom('messages').select('id').where('session_id', '=', header.sessionId).execute();
  assert.is(rows.length, 3);
});

test('concurrent first jobs of one session create one row and all apply', async () => {
  const header = sessionHeader(parties);
  const messages = Array.from({ length: 5 }, (_, i) => messageJob(header, { content: `m${i}` }));
  await Promise.all([
    ...messages.map((job) => storeMessage(t.db, job)),
    applySessionState(t.db, stateJob(header, { version: 2, status: 'paused' })),
  ]);
  const sessions = await t.db.selectFrom('sessions').select('id').where('id', '=', header.sessionId).execute();
  assert.is(sessions.length, 1);
  const stored = await t.db.selectFrom('messages').select('id').where('session_id', '=', header.sessionId).execute();
  assert.is(stored.length, 5);
  assert.is((await sessionRow(header.sessionId)).status, 'paused');
});

test('a message for a session of another user is refused', async () => {
  const header = sessionHeader(parties);
  await storeMessage(t.db, messageJob(header));
  const other = await createParties(t.db);
  try {
    await storeMessage(t.db, messageJob({ ...header, userId: other.userId }));
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'session_mismatch');
  }
  const rows = await t.db.selectFrom('messages').select('id').where('session_id', '=', header.sessionId).execute();
  assert.is(rows.length, 1);
});

test.run();
