import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { dueKey, userBucket, userKeys } from '#shared/live-state/keys.ts';
import { scanKeys } from '#shared/live-state/redis-client.ts';
import { createClone, createUser, nextEvent, request, startSystem, unreachableWhile, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

// Recovery without extra processes: a client that drops mid-reply, an outbox left behind by a crash, and live
// state lost from Redis. Checkpoints every 200 ms; the sweep and reconciler are run by hand.
let system: TestSystem;
let queueDown = false;
test.before(async () => {
  system = await startSystem({
    env: { CHECKPOINT_MS: '200', OUTBOX_GRACE_MS: '0', RECONCILE_MS: '600000' },
    openai: { reply: () => 'one two three four five six seven eight nine ten', chunkDelayMs: 60 },
    wrapJobs: unreachableWhile(() => queueDown),
  });
});
test.after(async () => {
  await system?.close();
});

const settled = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');

test('a client that drops during a streamed reply finds the completed reply through session:history', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const first = await system.connect(userId);
  const keepAlive = await system.connect(userId); // another tab keeps the chat active
  const started = await request(first, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const firstDelta = nextEvent(first, 'message:delta', (d) => d.sessionId === sessionId);
  const sent = await request(first, 'message:send', { sessionId, clientMessageId: 'q1', content: 'count to ten' });
  if (!sent.ok) throw new Error(JSON.stringify(sent));
  await firstDelta;
  first.disconnect(); // mid-stream
  await nextEvent(keepAlive, 'message:completed', (c) => c.sessionId === sessionId, 5000);
  const back = await system.connect(userId);
  const history = await request(back, 'session:history', { sessionId, afterMessageId: sent.message.id });
  if (!history.ok) throw new Error(JSON.stringify(history));
  assert.is(history.messages.length, 1);
  assert.is(history.messages[0]!.senderType, 'ai');
  assert.is(history.messages[0]!.content, 'one two three four five six seven eight nine ten');
  const all = await request(back, 'session:history', { sessionId });
  assert.equal(all.ok && all.messages.map((m) => m.senderType), ['user', 'ai']);
  // after the session is settled and its live state gone, history comes from Postgres
  await request(back, 'session:end', { sessionId });
  await settled(sessionId);
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  await system.redis.del(keys.session(sessionId), keys.messageLog(sessionId));
  const fromPostgres = await request(back, 'session:history', { sessionId });
  assert.equal(fromPostgres.ok && fromPostgres.messages.map((m) => m.content), ['count to ten', 'one two three four five six seven eight nine ten']);
  const other = await system.connect(await createUser(system));
  const foreign = await request(other, 'session:history', { sessionId });
  assert.is(foreign.ok ? 'ok' : foreign.error.code, 'forbidden');
  for (const c of [keepAlive, back, other]) c.disconnect();
});

test('facts a crashed relay left in the outbox are relayed by the sweep, once', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const started = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  queueDown = true;
  const ended = await request(client, 'session:end', { sessionId }, 10_000);
  assert.is(ended.ok ? 'ok' : ended.error.code, 'ok', 'answered at once: the end and its facts are in the outbox');
  await system.gateway.relaysSettled(); // the relay behind the answer: the queue was down for every retry
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  const left = await system.redis.xlen(keys.outbox);
  assert.ok(left >= 2, 'the end and its settlement are kept in the outbox');
  queueDown = false;
  assert.is((await system.gateway.sweep()).relayed, left);
  assert.is(await system.redis.xlen(keys.outbox), 0);
  const row = await settled(sessionId);
  assert.is(row.end_reason, 'user');
  assert.is((await system.gateway.sweep()).relayed, 0, 'nothing twice');
  const ledger = await system.database.db.selectFrom('ledger_entries').select('id').where('session_id', '=', sessionId).execute();
  assert.is(ledger.length, 3);
  client.disconnect();
});

test('a due-schedule entry lost (a Redis restart, a failover) is rebuilt by the reconciler for a user with an open session', async () => {
  const userId = await createUser(system, '20.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  await waitFor(() => system.store.isScheduled(userId), 5000, 'the schedule to hold the user');
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', started.session.id).executeTakeFirst(), 5000, 'the session row');
  // as a failover of the bucket's master before the entry reached its replica
  await system.redis.zrem(dueKey(system.config.REDIS_PREFIX, userBucket(userId)), userId);
  assert.is(await system.store.isScheduled(userId), false);
  const report = await system.reconciler.runOnce();
  assert.ok(report.rescheduled.includes(userId), JSON.stringify(report));
  assert.ok(await system.store.isScheduled(userId), 'scheduled again');
  const again = await system.reconciler.runOnce();
  assert.not.ok(again.rescheduled.includes(userId), 'an entry that is there is left alone');
  await request(client, 'session:end', { sessionId: started.session.id });
  client.disconnect();
});

test('live state lost from Redis: the reconciler settles at the last checkpoint with reason state_lost', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  const started = await startInRoom(system, client, { cloneId, type: 'video' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const checkpoint = await waitFor(async () => {
    const row = await system.database.db.selectFrom('sessions').select(['checkpoint_at', 'checkpoint_cost', 'active_ms']).where('id', '=', sessionId).executeTakeFirst();
    return row && Number(row.active_ms) >= 400 ? row : undefined;
  }, 5000, 'a checkpoint');
  // everything of this user is gone from Redis (a flush of our keys; other tenants of the server keep theirs)
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  // in one command, as a flush would: a meter tick never sees half of the user's state (one hash tag: one slot)
  const found: string[] = [];
  await scanKeys(system.redis, `${keys.base}*`, async (batch) => void found.push(...batch));
  await system.redis.del(...found);
  const report = await system.reconciler.runOnce();
  assert.ok(report.stateLost.includes(sessionId));
  const row = await settled(sessionId);
  assert.is(row.end_reason, 'state_lost');
  const rate = parseMoney('60.0000');
  assert.ok(parseMoney(row.total_cost) >= parseMoney(checkpoint.checkpoint_cost));
  assert.is(parseMoney(row.total_cost), timeCost(rate, Number(row.active_ms)), 'exactly the checkpointed time');
  assert.ok(Number(row.active_ms) >= Number(checkpoint.active_ms));
  const user = await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(parseMoney(user.credits_remaining), parseMoney('50.0000') - parseMoney(row.total_cost));
  const again = await system.reconciler.runOnce();
  assert.not.ok(again.stateLost.includes(sessionId), 'settled once');
  client.disconnect();
});

test.run();
