import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { dueKey, userBucket } from '#shared/live-state/keys.ts';
import type { MeterTick } from '#shared/contract/socket-events.ts';
import { activeMsAt, costAt } from '#shared/live-state/live-session.ts';
import { connectedUserAndClone, request, startSystem, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

// Scripts answer with the whole state of the sessions they changed or were asked about only, plus a short reading of
// every open session (what ticks and warnings need). Those readings must say what the live state says, at once.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { CHECKPOINT_MS: '300' } });
});
test.after(async () => {
  await system?.close();
});

test('an advance reads every open session and returns whole state only of the sessions asked about', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '6.0000');
  const a = await request(client, 'session:start', { cloneId, type: 'chat' });
  const b = await request(client, 'session:start', { cloneId, type: 'chat' });
  const c = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!a.ok || !b.ok || !c.ok) throw new Error('start failed');
  await request(client, 'session:pause', { sessionId: b.session.id });
  await new Promise((resolve) => setTimeout(resolve, 150));

  const store = system.store;
  const outcome = await store.advance(userId);
  assert.is(outcome.sessions.size, 0, 'nothing changed, nothing asked: no whole session state');
  assert.equal(outcome.open.map((r) => r.id).sort(), [a.session.id, b.session.id, c.session.id].sort());
  let spent = 0n;
  for (const reading of outcome.open) {
    const live = (await store.peek(userId, reading.id))!;
    assert.is(reading.status, live.status);
    assert.is(reading.activeMs, activeMsAt(live, outcome.now), 'active ms at the answer\'s now');
    assert.is(reading.cost, costAt(live, outcome.now), 'cost at the answer\'s now');
    assert.is(reading.rate, live.rate);
    spent += reading.cost;
  }
  assert.is(outcome.available, outcome.budget - spent);
  assert.ok((await store.advance(userId, '', b.session.id)).sessions.has(b.session.id), 'a session asked about is whole');
  client.disconnect();
});

test('meter ticks carry the live figures and follow a change made through another gateway at once', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '0.0600');
  const a = await request(client, 'session:start', { cloneId, type: 'chat' });
  const b = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!a.ok || !b.ok) throw new Error('start failed');
  const ticks: MeterTick[] = [];
  client.on('meter:tick', (tick) => ticks.push(tick));
  await waitFor(() => ticks.some((t) => t.sessionId === b.session.id), 3000, 'a tick of b');
  for (const tick of ticks) {
    // one instant per tick: what is left is what the user had minus both sessions, never more than the budget
    assert.ok(parseMoney(tick.creditsRemaining) + parseMoney(tick.cost) <= parseMoney('50.0000'));
    assert.is(tick.ratePerMinute, '0.0600');
  }
  // paused elsewhere: no gateway keeps a copy of the state, so the very next ticks leave b out
  await system.store.transition(userId, b.session.id, 'pause', 'user', '');
  const after = ticks.length;
  await waitFor(() => ticks.slice(after).filter((t) => t.sessionId === a.session.id).length >= 3, 3000, 'ticks of a');
  const bTicks = ticks.slice(after).filter((t) => t.sessionId === b.session.id);
  assert.ok(bTicks.length <= 1, 'at most a tick that was on its way');
  const got = await request(client, 'session:get', { sessionId: b.session.id });
  assert.is(got.ok && got.session.status, 'paused');
  client.disconnect();
});

test('a lone chat\'s tick: credits left and cost add up to the budget exactly', async () => {
  const { cloneId, client } = await connectedUserAndClone(system, '7.0000', '3.3333');
  const a = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!a.ok) throw new Error('start failed');
  const tick = await new Promise<MeterTick>((resolve) => client.on('meter:tick', resolve));
  assert.is(formatMoney(parseMoney(tick.creditsRemaining) + parseMoney(tick.cost)), '7.0000');
  client.disconnect();
});

test('the active sessions of a user record their checkpoints together', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '1.0000');
  const a = await request(client, 'session:start', { cloneId, type: 'chat' });
  await new Promise((resolve) => setTimeout(resolve, 120));
  const b = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!a.ok || !b.ok) throw new Error('start failed');
  const checkpoints = async () => {
    const [x, y] = await Promise.all([a.session.id, b.session.id].map((id) => system.redis.hget(`${system.config.REDIS_PREFIX}:u:{${userId}}:s:${id}`, 'checkpointAt')));
    return { a: Number(x), b: Number(y) };
  };
  const first = await checkpoints();
  assert.ok(first.b - first.a >= 100, 'started apart');
  const aligned = await waitFor(async () => {
    const now = await checkpoints();
    return now.a > first.a && now.a === now.b ? now : undefined;
  }, 5000, 'one checkpoint instant for both');
  assert.ok(aligned.a > first.b, 'b recorded early, with a');
  client.disconnect();
});

test('an answer that finds nothing due sooner than the schedule holds asks for no scheduling', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '1.0000');
  const a = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!a.ok) throw new Error('start failed');
  const outcome = await system.store.advance(userId, system.gateway.gatewayId);
  assert.ok(outcome.nextDue !== null);
  assert.is(outcome.schedule, false);
  // (the due scheduler may have moved it on since: checkpoints are due every 300 ms here)
  assert.ok(Number(await system.redis.zscore(dueKey(system.config.REDIS_PREFIX, userBucket(userId)), userId)) > 0, 'the schedule holds the user');
  client.disconnect();
});

test.run();
