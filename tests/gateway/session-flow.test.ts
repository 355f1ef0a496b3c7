import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { parseMoney, formatMoney } from '#shared/money/money.ts';
import { userKeys } from '#shared/live-state/keys.ts';
import type { WireSession } from '#shared/contract/socket-events.ts';
import { createClone, createUser, nextEvent, request, startSystem, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

let system: TestSystem;

test.before(async () => {
  system = await startSystem({ openai: { reply: () => 'Hello from the clone, streamed in pieces.', usage: { prompt_tokens: 40, completion_tokens: 10 } }, env: { AI_PRICE_PER_1K_TOKENS: '0.5000' } });
});
test.after(async () => {
  await system?.close();
});

function ok<T extends { ok: boolean }>(answer: T): Extract<T, { ok: true }> {
  if (!answer.ok) throw new Error(`expected ok, got ${JSON.stringify(answer)}`);
  return answer as Extract<T, { ok: true }>;
}

test('a chat session runs from start to a settled, balanced ledger', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId, creatorId } = await createClone(system, '6.0000');
  const client = await system.connect(userId);

  const started = ok(await request(client, 'session:start', { cloneId, type: 'chat' }));
  const session = started.session;
  assert.is(session.status, 'active');
  assert.is(session.ratePerMinute, '6.0000');
  assert.is(session.userId, userId);
  assert.is(session.cost, '0.0000');

  const tick = await nextEvent(client, 'meter:tick', (t) => t.sessionId === session.id);
  assert.is(tick.ratePerMinute, '6.0000');
  assert.ok(parseMoney(tick.creditsRemaining) <= parseMoney('50.0000'));

  const deltas: string[] = [];
  client.on('message:delta', (d) => deltas.push(d.delta));
  const completed = nextEvent(client, 'message:completed', (c) => c.sessionId === session.id);
  const sent = ok(await request(client, 'message:send', { sessionId: session.id, clientMessageId: 'm-1', content: 'What is a ledger?' }));
  assert.is(sent.message.senderType, 'user');
  assert.is(sent.message.costIncrement, '0.0000');
  const reply = (await completed).message;
  assert.is(reply.senderType, 'ai');
  assert.is(deltas.join(''), reply.content);
  assert.is(reply.content, 'Hello from the clone, streamed in pieces.');
  assert.is(reply.tokensUsed, 50);
  assert.is(reply.costIncrement, '0.0250'); // 50 tokens × 0.5 / 1000
  const lastRequest = system.openai.requests.at(-1)!;
  assert.ok(JSON.stringify(lastRequest.body.messages).includes('Dr. Test'));

  const paused = ok(await request(client, 'session:pause', { sessionId: session.id })).session;
  assert.is(paused.status, 'paused');
  const resumed = ok(await request(client, 'session:resume', { sessionId: session.id })).session;
  assert.is(resumed.status, 'active');
  await nextEvent(client, 'meter:tick', (t) => t.sessionId === session.id);
  const endedEvent = nextEvent(client, 'session:ended', (e) => e.sessionId === session.id);
  const ended = ok(await request(client, 'session:end', { sessionId: session.id })).session;
  assert.is(ended.status, 'ended');
  assert.is((await endedEvent).reason, 'user');
  assert.is(ended.messageCount, 2);

  const row = await waitFor(
    () => system.database.db.selectFrom('sessions').selectAll().where('id', '=', session.id).where('settled_at', 'is not', null).executeTakeFirst(),
    10_000,
    'settlement',
  );
  assert.is(row.status, 'ended');
  assert.is(row.end_reason, 'user');
  assert.is(row.total_cost, ended.cost);
  assert.is(row.message_count, 2);
  const activeMs = Number(row.active_ms);
  // time cost from the total active time, plus the reply
  const expected = (parseMoney('6.0000') * BigInt(activeMs) * 2n + 60_000n) / 120_000n + parseMoney('0.0250');
  assert.is(parseMoney(row.total_cost), expected);
  assert.is(row.duration_minutes, Math.ceil(activeMs / 60_000));

  // the audit trail: every state change, and the intervals add up to the billed active time
  const events = await waitFor(async () => {
    const rows = await system.database.db.selectFrom('session_events').selectAll().where('session_id', '=', session.id).orderBy('version').execute();
    return rows.length === 4 && rows;
  }, 5000, 'four session events');
  assert.equal(events.map((e) => [e.kind, e.reason]), [['started', 'user'], ['paused', 'user'], ['resumed', 'user'], ['ended', 'user']]);
  const [startedAt, pausedAt, resumedAt, endedAt] = events.map((e) => new Date(e.at).getTime()) as [number, number, number, number];
  assert.is(pausedAt - startedAt + (endedAt - resumedAt), activeMs);
  assert.is(Number(events[3]!.active_ms), activeMs);

  const ledger = await system.database.db.selectFrom('ledger_entries').selectAll().where('session_id', '=', session.id).execute();
  assert.is(ledger.length, 3);
  const sum = ledger.reduce((total, e) => total + parseMoney(e.amount), 0n);
  assert.is(sum, 0n);
  const charge = ledger.find((e) => e.kind === 'session_charge')!;
  assert.is(parseMoney(charge.amount), -expected);
  assert.is(ledger.find((e) => e.kind === 'creator_earning')!.account_id, creatorId);

  const user = await system.database.db.selectFrom('user_profiles').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, formatMoney(parseMoney('50.0000') - expected));
  assert.is(user.total_spent, formatMoney(expected));
  assert.ok(user.last_login !== null);

  const messages = await system.database.db.selectFrom('messages').selectAll().where('session_id', '=', session.id).orderBy('created_at').execute();
  assert.equal(messages.map((m) => m.sender_type), ['user', 'ai']);
  assert.is(messages[1]!.tokens_used, 50);
  assert.is(messages[1]!.cost_increment, '0.0250');

  // the worker handed the settlement back to the live state: nothing of this session is counted twice
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  await waitFor(async () => (await system.redis.hexists(keys.unsettled, session.id)) === 0, 5000, 'the unsettled total to be released');
  assert.is(await system.redis.hget(keys.account, 'credits'), String(parseMoney(user.credits_remaining)));
  assert.is(await system.redis.hget(keys.account, 'creditsVersion'), user.credits_version);

  const analytics = await system.database.db.selectFrom('user_analytics').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
  assert.is(analytics.sessions_count, 1);
  assert.is(analytics.messages_sent, 1);
  assert.is(analytics.total_spent, formatMoney(expected));
  client.disconnect();
});

test('a repeated clientMessageId returns the same message, stored and answered once', async () => {
  const userId = await createUser(system, '20.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const { session } = ok(await request(client, 'session:start', { cloneId, type: 'chat' }));
  const requestsBefore = system.openai.requests.length;
  const completed = nextEvent(client, 'message:completed', (c) => c.sessionId === session.id);
  const payload = { sessionId: session.id, clientMessageId: 'same-id', content: 'once please' };
  const answers = await Promise.all([request(client, 'message:send', payload), request(client, 'message:send', payload), request(client, 'message:send', payload)]);
  const ids = answers.map((a) => ok(a).message.id);
  assert.is(new Set(ids).size, 1);
  await completed;
  const again = ok(await request(client, 'message:send', payload));
  assert.is(again.message.id, ids[0]);
  ok(await request(client, 'session:end', { sessionId: session.id }));
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', session.id).where('settled_at', 'is not', null).executeTakeFirst());
  const rows = await system.database.db.selectFrom('messages').select(['sender_type', 'client_message_id']).where('session_id', '=', session.id).execute();
  assert.is(rows.filter((r) => r.sender_type === 'user').length, 1);
  assert.is(rows.filter((r) => r.sender_type === 'ai').length, 1);
  assert.is(system.openai.requests.length - requestsBefore, 1);
  const settled = await system.database.db.selectFrom('sessions').select('message_count').where('id', '=', session.id).executeTakeFirstOrThrow();
  assert.is(settled.message_count, 2);
  client.disconnect();
});

test('two sessions of one user run out of credits together and never go below zero', async () => {
  // 10 and 5 units a millisecond never add up to 5001 units exactly: the last millisecond always overshoots
  const userId = await createUser(system, '0.5001');
  const a = await createClone(system, '60.0000'); // 1 credit a second
  const b = await createClone(system, '30.0000');
  const client = await system.connect(userId);
  const endings: Array<{ sessionId: string; reason: string; session: WireSession }> = [];
  client.on('session:ended', (e) => endings.push(e));
  const [first, second] = await Promise.all([
    request(client, 'session:start', { cloneId: a.cloneId, type: 'chat' }),
    startInRoom(system, client, { cloneId: b.cloneId, type: 'voice' }),
  ]);
  const ids = [ok(first).session.id, ok(second).session.id];
  await waitFor(() => endings.length === 2, 5000, 'both sessions to end');
  for (const e of endings) assert.is(e.reason, 'credits_exhausted');
  // the gateway itself charges exactly what was left: rounding excess is trimmed before the worker sees it
  assert.is(endings.reduce((total, e) => total + parseMoney(e.session.cost), 0n), parseMoney('0.5001'));
  const rows = await waitFor(async () => {
    const r = await system.database.db.selectFrom('sessions').selectAll().where('id', 'in', ids).where('settled_at', 'is not', null).execute();
    return r.length === 2 && r;
  });
  const charged = rows.reduce((total, r) => total + parseMoney(r.total_cost), 0n);
  assert.is(charged, parseMoney('0.5001'));
  const user = await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '0.0000');
  // both ended at the same instant
  assert.is(rows[0]!.end_time!.getTime(), rows[1]!.end_time!.getTime());
  const sums = await sql<{ session_id: string; total: string }>`select session_id, sum(amount)::text as total from ledger_entries where session_id in (${sql.join(ids)}) group by session_id`.execute(system.database.db);
  for (const r of sums.rows) assert.is(parseMoney(r.total), 0n);
  const retry = await request(client, 'session:start', { cloneId: a.cloneId, type: 'chat' });
  assert.is(retry.ok ? 'ok' : retry.error.code, 'insufficient_credits');
  client.disconnect();
});

test('session:get returns own sessions, live and after settlement', async () => {
  const userId = await createUser(system);
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const { session } = ok(await startInRoom(system, client, { cloneId, type: 'video' }));
  const got = ok(await request(client, 'session:get', { sessionId: session.id })).session;
  assert.is(got.id, session.id);
  assert.is(got.type, 'video');
  client.disconnect();
  const unknown = await request(await system.connect(userId), 'session:get', { sessionId: randomUUID() });
  assert.is(unknown.ok ? 'ok' : unknown.error.code, 'not_found');
});

test.run();
