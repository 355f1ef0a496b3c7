import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { createClone, createUser, nextEvent, request, startSystem, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { IDLE_PAUSE_MS: '300', PAUSED_END_MS: '400', LOW_BALANCE_SECONDS: '120' } });
});
test.after(async () => {
  await system?.close();
});

test('an idle chat pauses at exactly IDLE_PAUSE_MS, then ends with idle_timeout after PAUSED_END_MS', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error('start failed');
  const sessionId = started.session.id;
  const paused = await nextEvent(client, 'session:updated', (s) => s.id === sessionId && s.status === 'paused', 3000);
  assert.is(paused.activeSeconds, 0);
  assert.is(paused.cost, '0.3000'); // exactly 300 ms at 60/min, however late the poll noticed it
  const ended = await nextEvent(client, 'session:ended', (e) => e.sessionId === sessionId, 3000);
  assert.is(ended.reason, 'idle_timeout');
  assert.is(ended.session.cost, '0.3000');
  const row = await waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst());
  assert.is(row.total_cost, '0.3000');
  assert.is(row.end_reason, 'idle_timeout');
  assert.is(row.active_ms, '300');
  assert.is(row.end_time!.getTime() - row.start_time.getTime(), 700);
  client.disconnect();
});

test('a user message keeps the chat active (the idle pause comes IDLE_PAUSE_MS after the last one); voice sessions do not idle-pause', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  // the voice session first: the chat's idle clock (300 ms) starts with the chat, not a room join earlier
  const voice = await startInRoom(system, client, { cloneId, type: 'voice' });
  const chat = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!chat.ok || !voice.ok) throw new Error('start failed');
  const paused = nextEvent(client, 'session:updated', (s) => s.id === chat.session.id && s.status === 'paused', 10_000);
  // messages ~100 ms apart; on a slow machine one may arrive after the pause (refused): the last accepted one counts
  let last = Date.parse(chat.session.startTime);
  let accepted = 0;
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sent = await request(client, 'message:send', { sessionId: chat.session.id, clientMessageId: `k${i}`, content: 'still here' });
    if (!sent.ok) break;
    accepted += 1;
    last = Date.parse(sent.message.createdAt);
  }
  assert.ok(accepted >= 1, 'the first message, sent well inside IDLE_PAUSE_MS, is accepted');
  // paused exactly IDLE_PAUSE_MS after the last message (server instants), whatever the machine's speed
  const activeMs = last - Date.parse(chat.session.startTime) + 300;
  assert.ok(activeMs > 300, 'the messages moved the idle clock');
  assert.is((await paused).cost, formatMoney(timeCost(parseMoney('60.0000'), activeMs)));
  const v = await request(client, 'session:get', { sessionId: voice.session.id });
  assert.is(v.ok && v.session.status, 'active');
  client.disconnect();
});

test('when the user\'s last socket disconnects, active chats pause at that instant', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const first = await system.connect(userId);
  const second = await system.connect(userId);
  const started = await request(first, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error('start failed');
  first.disconnect();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const stillActive = await request(second, 'session:get', { sessionId: started.session.id });
  assert.is(stillActive.ok && stillActive.session.status, 'active');
  second.disconnect();
  await waitFor(async () => {
    const row = await system.database.db.selectFrom('sessions').select('status').where('id', '=', started.session.id).executeTakeFirst();
    return row?.status === 'paused';
  }, 3000, 'the session to pause');
  const back = await system.connect(userId);
  const got = await request(back, 'session:get', { sessionId: started.session.id });
  assert.is(got.ok && got.session.status, 'paused');
  back.disconnect();
});

test('credits:low is sent once, meter ticks carry the live figures', async () => {
  const userId = await createUser(system, '3.0000');
  const { cloneId } = await createClone(system, '1.0000'); // 3 credits at 1/min: 180 s left
  const { cloneId: pricier } = await createClone(system, '2.0000');
  const client = await system.connect(userId);
  const lows: unknown[] = [];
  client.on('credits:low', (w) => lows.push(w));
  const a = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!a.ok) throw new Error('start failed');
  const tick = await nextEvent(client, 'meter:tick', (t) => t.sessionId === a.session.id);
  assert.is(tick.ratePerMinute, '1.0000');
  assert.ok(tick.creditsRemaining <= '3.0000' && tick.creditsRemaining > '2.9');
  assert.is(lows.length, 0, '180 s left at 1/min is above the threshold');
  // a second session triples the burn: 3 credits at 3/min is 60 s
  const lowWarning = nextEvent(client, 'credits:low', () => true, 10_000);
  const b = await startInRoom(system, client, { cloneId: pricier, type: 'voice' });
  if (!b.ok) throw new Error('start failed');
  const low = await lowWarning;
  assert.ok(low.secondsLeft <= 60 && low.secondsLeft > 50);
  await nextEvent(client, 'meter:tick', (t) => t.sessionId === b.session.id);
  await nextEvent(client, 'meter:tick', (t) => t.sessionId === b.session.id);
  const perSession = new Map<string, number>();
  for (const w of lows as Array<{ sessionId: string }>) perSession.set(w.sessionId, (perSession.get(w.sessionId) ?? 0) + 1);
  assert.ok([...perSession.values()].every((n) => n === 1), 'once per session');
  client.disconnect();
});

test.run();
