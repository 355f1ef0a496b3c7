import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { userKeys } from '#shared/live-state/keys.ts';
import { readingAt } from '#shared/live-state/live-session.ts';
import type { Outcome } from '#shared/live-state/session-store.ts';
import { MeterReadings } from '#gateway/meter/meter-readings.ts';
import type { MeterTick } from '#shared/contract/socket-events.ts';
import { connectedUserAndClone, createUser, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// A meter tick shows a reading some script answered, projected to now, while the account's revision says nothing
// changed since; a change anywhere moves the revision and the next tick reads the live state again.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ worker: false });
});
test.after(async () => {
  await system?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a reading projected forward says exactly what a later read says, while the revision holds', async () => {
  const store = system.store;
  const userId = await createUser(system, '20.0000');
  await store.applyBalance(userId, parseMoney('20.0000'), '1', []);
  const sessionId = randomUUID();
  const started = await store.start({ userId, sessionId, cloneId: randomUUID(), type: 'chat', rate: parseMoney('0.7777'), minStartMs: 0, maxOpen: 5 });
  assert.is(started.code, 0);
  const other = randomUUID();
  await store.start({ userId, sessionId: other, cloneId: randomUUID(), type: 'chat', rate: parseMoney('1.3000'), minStartMs: 0, maxOpen: 5 });
  let reading = await store.advance(userId);
  for (const step of ['read', 'reply', 'pause', 'read'] as const) {
    await sleep(137);
    if (step === 'reply') {
      const replied = await store.addReply(userId, sessionId, { messageId: randomUUID(), content: 'an answer', tokensUsed: 99, cost: parseMoney('0.0123'), citations: [] });
      assert.ok(replied.rev > reading.rev, 'a reply\'s cost moves the revision');
      reading = replied;
      await sleep(91);
    }
    if (step === 'pause') {
      const paused = await store.transition(userId, other, 'pause');
      assert.ok(paused.rev > reading.rev, 'a pause moves the revision');
      reading = paused;
      await sleep(73);
    }
    const later = await store.advance(userId);
    assert.is(later.rev, reading.rev, `nothing changed before the ${step} read: the revision holds`);
    assert.is(await store.revision(userId), later.rev);
    const projected = readingAt(reading.open, reading.budget, later.now - reading.now);
    assert.equal(projected.open, later.open, `the projected sessions are the read ones (${step})`);
    assert.is(projected.available, later.available, `the projected credits are the read ones (${step})`);
    reading = later;
  }
  // the due scheduler's question when nothing is due: no reading (the open sessions are not read), same revision
  const dueOnly = await store.advance(userId, '', '', true);
  assert.is(dueOnly.reading, false);
  assert.equal(dueOnly.open, []);
  assert.is(dueOnly.rev, reading.rev);
  assert.ok(dueOnly.nextDue !== null, 'the next due instant is still told');
  // the idle pause of the active chat is the next event: no projection goes past it
  const idleAt = (await store.peek(userId, sessionId))!.lastUserAt + system.config.IDLE_PAUSE_MS;
  assert.is(dueOnly.eventDue, idleAt);
  const message = await store.addMessage(userId, sessionId, randomUUID(), randomUUID(), 'a question');
  assert.is(message.rev, reading.rev, 'a user message changes no reading: the revision holds');
  const snapshot = await store.applyBalance(userId, parseMoney('25.0000'), '2', []);
  assert.ok(snapshot.rev > message.rev, 'a new balance moves the revision');
});

test('a held reading is replaced only by a newer one that reads the open sessions', () => {
  const readings = new MeterReadings();
  const outcome = (rev: number, now: number, reading = true) =>
    ({ rev, now, reading, eventDue: null, budget: BigInt(rev), open: reading ? [{ id: `s${rev}`, type: 'chat', status: 'active', rate: 1n, activeMs: 0, cost: 0n, lowSent: false }] : [] }) as unknown as Outcome;
  readings.record('u', outcome(5, 100));
  assert.is(readings.get('u'), undefined, 'a user not followed gets no reading');
  readings.follow('u', outcome(5, 100));
  readings.record('u', outcome(4, 200));
  assert.is(readings.get('u')!.rev, 5, 'an older revision arriving late is ignored');
  readings.record('u', outcome(6, 150, false));
  assert.is(readings.get('u')!.rev, 5, 'an answer without a reading is ignored');
  readings.record('u', outcome(5, 300));
  assert.is(readings.get('u')!.now, 300, 'the same revision read later replaces it');
  // projectable only while younger than the bound and short of the instant an event is due
  readings.follow('v', { ...outcome(7, 1_000), eventDue: 1_500 } as Outcome, 50_000);
  assert.is(readings.projectable('v', 50_400, 30_000)?.elapsedMs, 400);
  assert.is(readings.projectable('v', 50_500, 30_000), undefined, 'an event is due: read the state');
  readings.follow('w', { ...outcome(7, 1_000), eventDue: null } as Outcome, 50_000);
  assert.ok(readings.projectable('w', 79_999, 30_000));
  assert.is(readings.projectable('w', 80_000, 30_000), undefined, 'too old');
  readings.noteLowSent('u', 's5');
  assert.ok(readings.get('u')!.open[0]!.lowSent);
  for (const user of ['u', 'v', 'w']) readings.forget(user);
  assert.is(readings.size, 0);
});

test('ticks between changes are projected: no script runs for them, and their figures stay exact', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '9.0000', '0.6000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error('start failed');
  const ticks: MeterTick[] = [];
  client.on('meter:tick', (tick) => ticks.push(tick));
  await waitFor(() => ticks.length >= 2, 3000, 'the first ticks');
  // every script that reads the state moves the account's cursor to its now; projected ticks run none
  const cursor = () => system.redis.hget(userKeys(system.config.REDIS_PREFIX, userId).account, 'cursor');
  const before = await cursor();
  const seen = ticks.length;
  await waitFor(() => ticks.length >= seen + 8, 5000, 'eight more ticks');
  assert.is(await cursor(), before, 'no script ran for eight ticks');
  const costs = ticks.slice(seen).map((t) => parseMoney(t.cost));
  assert.ok(costs.every((cost, i) => i === 0 || cost >= costs[i - 1]!), 'the cost only rises');
  assert.ok(costs.at(-1)! > costs[0]!, 'and it does rise');
  for (const tick of ticks) assert.is(formatMoney(parseMoney(tick.creditsRemaining) + parseMoney(tick.cost)), '9.0000', 'credits left and cost add up');
  // what the live state says right after the last tick is at least as much, and at most a tick's burn more
  const last = ticks.at(-1)!;
  const read = (await system.store.advance(userId)).open.find((s) => s.id === started.session.id)!;
  const gap = read.cost - parseMoney(last.cost);
  assert.ok(gap >= 0n && gap <= parseMoney('0.0100'), `live ${formatMoney(read.cost)} vs ticked ${last.cost}`);

  // a change made without this gateway (another gateway, the scheduler) moves the revision: the next ticks read it
  await system.store.addReply(userId, started.session.id, { messageId: randomUUID(), content: 'x', tokensUsed: 1, cost: parseMoney('1.0000'), citations: [] });
  const after = ticks.length;
  await waitFor(() => ticks.length >= after + 2, 3000, 'ticks after the change');
  assert.ok(parseMoney(ticks.at(-1)!.cost) >= parseMoney(last.cost) + parseMoney('1.0000'), 'the reply\'s cost shows');
  client.disconnect();
});

test.run();
