import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { MeterTicker } from '#gateway/meter/meter-ticker.ts';
import { waitFor } from '../support/system.ts';

// The ticker alone, against a fake service: which users tick when, and which get a presence heartbeat.
const logger = pino({ level: 'silent' });

function fakeService(answer: (userId: string) => Promise<boolean> = async () => true) {
  const ticks: Array<{ userId: string; at: number }> = [];
  const heartbeats: string[] = [];
  const forgotten: string[] = [];
  return {
    ticks,
    heartbeats,
    forgotten,
    service: {
      tick: (userId: string) => {
        ticks.push({ userId, at: Date.now() });
        return answer(userId);
      },
      forget: (userId: string) => forgotten.push(userId),
      heartbeat: async (userId: string) => {
        heartbeats.push(userId);
        return !userId.startsWith('stale');
      },
    },
  };
}

test('watched users are spread evenly over the slots of the interval, and each ticks once per interval', async () => {
  const fake = fakeService();
  const ticker = new MeterTicker({ service: fake.service, logger, tickMs: 200, heartbeatMs: 60_000, slots: 10 });
  const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
  for (const user of users) ticker.watch(user);
  const perSlot = new Map<number, number>();
  for (const user of users) perSlot.set(ticker.slotOf(user)!, (perSlot.get(ticker.slotOf(user)!) ?? 0) + 1);
  assert.equal([...perSlot.values()], Array(10).fill(3), 'three users in each of the ten slots');
  const slot = ticker.slotOf(users[0]!);
  ticker.watch(users[0]!);
  assert.is(ticker.slotOf(users[0]!), slot, 'watching again keeps the slot');
  ticker.start();
  await waitFor(() => users.every((user) => fake.ticks.filter((t) => t.userId === user).length >= 2), 5000, 'two ticks each');
  await ticker.close();
  const counts = users.map((user) => fake.ticks.filter((t) => t.userId === user).length);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `even ticks: ${counts.join(',')}`);
});

test('a tick still on its way is not stacked on; other users keep their cadence', async () => {
  let release: ((active: boolean) => void) | undefined;
  const slowTick = () => (release ? Promise.resolve(true) : new Promise<boolean>((resolve) => (release = resolve)));
  const fake = fakeService((userId) => (userId === 'slow' ? slowTick() : Promise.resolve(true)));
  const ticker = new MeterTicker({ service: fake.service, logger, tickMs: 50, heartbeatMs: 60_000, slots: 5 });
  ticker.watch('slow');
  ticker.watch('quick');
  ticker.start();
  await waitFor(() => fake.ticks.filter((t) => t.userId === 'quick').length >= 5, 5000, 'the quick user ticking');
  assert.is(fake.ticks.filter((t) => t.userId === 'slow').length, 1, 'one tick of the slow user at a time');
  release!(true);
  await waitFor(() => fake.ticks.filter((t) => t.userId === 'slow').length >= 2, 5000, 'the slow user ticking again');
  await ticker.close();
});

test('a tick that finds nothing active unwatches the user, unless new activity watched them meanwhile', async () => {
  let release: ((active: boolean) => void) | undefined;
  const racingTick = () => (release ? Promise.resolve(true) : new Promise<boolean>((resolve) => (release = resolve)));
  const fake = fakeService((userId) => (userId === 'racing' ? racingTick() : Promise.resolve(false)));
  const ticker = new MeterTicker({ service: fake.service, logger, tickMs: 50, heartbeatMs: 60_000, slots: 5 });
  ticker.watch('idle');
  ticker.watch('racing');
  ticker.start();
  await waitFor(() => fake.ticks.some((t) => t.userId === 'racing') && ticker.slotOf('idle') === undefined, 5000, 'the first ticks');
  // a session starts while the racing user's (idle) tick is on its way: the idle answer must not unwatch them
  ticker.watch('racing');
  release!(false);
  await waitFor(() => fake.ticks.filter((t) => t.userId === 'racing').length >= 2, 5000, 'a second tick of the racing user');
  assert.is(fake.ticks.filter((t) => t.userId === 'idle').length, 1, 'the idle user was not ticked again');
  await ticker.close();
});

test('the heartbeat refreshes every watched user, ticks or not; a stale sighting forgets the reading', async () => {
  let release: ((active: boolean) => void) | undefined;
  const fake = fakeService((userId) => (userId === 'stuck' ? new Promise<boolean>((resolve) => (release = resolve)) : Promise.resolve(true)));
  const ticker = new MeterTicker({ service: fake.service, logger, tickMs: 1000, heartbeatMs: 5000, slots: 1 });
  ticker.watch('ticked');
  ticker.watch('stuck');
  ticker.watch('stale-elsewhere');
  const ticking = ticker.tickAll();
  await new Promise((resolve) => setImmediate(resolve));
  await ticker.heartbeatAll();
  // ticks between changes are projected, no sightings: presence rests on the heartbeat alone
  assert.equal(fake.heartbeats.sort(), ['stale-elsewhere', 'stuck', 'ticked']);
  assert.equal(fake.forgotten, ['stale-elsewhere'], 'its next tick reads the state (a sighting) again');
  release!(true);
  await ticking;
  await ticker.close();
});

test('a user found idle, or unwatched while their tick was on its way, is forgotten', async () => {
  let release: ((active: boolean) => void) | undefined;
  let releasePaused: ((active: boolean) => void) | undefined;
  const fake = fakeService((userId) =>
    userId === 'leaving'
      ? new Promise<boolean>((resolve) => (release = resolve))
      : userId === 'paused-leaving'
        ? new Promise<boolean>((resolve) => (releasePaused = resolve))
        : Promise.resolve(userId !== 'idle'),
  );
  const ticker = new MeterTicker({ service: fake.service, logger, tickMs: 1000, heartbeatMs: 5000, slots: 1 });
  ticker.watch('active');
  ticker.watch('idle');
  ticker.watch('leaving');
  ticker.watch('paused-leaving');
  const ticking = ticker.tickAll();
  await new Promise((resolve) => setImmediate(resolve));
  ticker.unwatch('leaving');
  ticker.unwatch('paused-leaving');
  assert.equal(fake.forgotten, ['idle', 'leaving', 'paused-leaving']);
  // the tick that was on its way may have taken a reading after the unwatch, whatever it found: forgotten again
  release!(true);
  releasePaused!(false);
  await ticking;
  assert.equal(fake.forgotten, ['idle', 'leaving', 'paused-leaving', 'leaving', 'paused-leaving']);
  assert.is(ticker.slotOf('active'), 0, 'the active user is still watched');
  await ticker.close();
});

test.run();
