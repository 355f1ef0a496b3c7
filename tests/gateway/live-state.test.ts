import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { parseMoney } from '#shared/money/money.ts';
import { dueKey, userBucket } from '#shared/live-state/keys.ts';
import { billingJobId, type SettleSessionJob } from '#shared/contract/billing-jobs.ts';
import { settleSession } from '#billing/settle/settle-session.ts';
import { refreshBalance } from '#shared/live-state/balance-refresh.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { createClone, createUser, request, startSystem, type TestSystem, startInRoom, waitFor } from '../support/system.ts';

// No billing worker here: the tests settle by hand, in the order they choose.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ worker: false });
});
test.after(async () => {
  await system?.close();
});

async function endedSessions(userId: string, count: number): Promise<SettleSessionJob[]> {
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  const jobs: SettleSessionJob[] = [];
  for (let i = 0; i < count; i++) {
    const started = await startInRoom(system, client, { cloneId, type: 'voice' });
    if (!started.ok) throw new Error(JSON.stringify(started));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await request(client, 'session:end', { sessionId: started.session.id });
    // the relay behind the answer may still be on its way to the queue
    const job = await waitFor(() => system.queue.getJob(billingJobId.settleSession(started.session.id)), 5000, 'the settlement job');
    jobs.push(job.data as SettleSessionJob);
  }
  client.disconnect();
  return jobs;
}

const budget = async (userId: string) => (await system.store.advance(userId)).budget;
const pgCredits = async (userId: string) =>
  parseMoney((await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow()).credits_remaining);

test('unsettled totals count until settled, and a later ack releases earlier settlements too', async () => {
  const userId = await createUser(system, '10.0000');
  const [a, b] = await endedSessions(userId, 2);
  const charged = parseMoney(a!.totalCost) + parseMoney(b!.totalCost);
  assert.ok(charged > 0n);
  assert.is(await budget(userId), parseMoney('10.0000') - charged, 'both ended totals are held back');
  assert.equal((await system.store.unsettledIds(userId)).sort(), [a!.session.sessionId, b!.session.sessionId].sort());

  await settleSession(system.database.db, a!, system.config.platformFeeRate);
  await settleSession(system.database.db, b!, system.config.platformFeeRate);
  // only B's ack arrives (A's is late): the snapshot after B includes A too, so neither is counted twice
  await refreshBalance(system.database.db, system.store, userId);
  assert.equal(await system.store.unsettledIds(userId), []);
  assert.is(await budget(userId), await pgCredits(userId));
  assert.is(await pgCredits(userId), parseMoney('10.0000') - charged);
  // A's late ack changes nothing
  await refreshBalance(system.database.db, system.store, userId);
  assert.is(await budget(userId), parseMoney('10.0000') - charged);
});

test('a session start after a settlement committed but before its ack does not count it twice', async () => {
  const userId = await createUser(system, '5.0000');
  const [a] = await endedSessions(userId, 1);
  await settleSession(system.database.db, a!, system.config.platformFeeRate);
  const client = await system.connect(userId);
  const { cloneId } = await createClone(system, '1.0000');
  const started = await startInRoom(system, client, { cloneId, type: 'voice' });
  assert.ok(started.ok);
  const outcome = await system.store.advance(userId);
  assert.is(outcome.budget, parseMoney('5.0000') - parseMoney(a!.totalCost));
  assert.equal(await system.store.unsettledIds(userId), []);
  client.disconnect();
});

test('a stale scheduler answer never removes or delays a fresher due instant', async () => {
  // a store of its own prefix: the gateway's due scheduler (polling its prefix every 20 ms) must not claim the entry
  const prefix = `${system.config.REDIS_PREFIX}_stale`;
  const store = new SessionStore(system.redis, { ...storeOptions(system.config), prefix });
  const userId = randomUUID();
  const key = dueKey(prefix, userBucket(userId));
  const [seconds] = await system.redis.time();
  const now = Number(seconds) * 1000;
  await store.scheduleDue(userId, now - 1000);
  const [due] = (await store.claimDue(1000, 10_000)).filter((d) => d.userId === userId);
  assert.is(due!.at, now - 1000);
  // while the scheduler works on it, an action schedules a fresh instant
  await store.scheduleDue(userId, now + 60_000);
  await store.rescheduleDue(userId, due!.at, null);
  assert.is(Number(await system.redis.zscore(key, userId)), now + 60_000, 'not removed');
  await store.rescheduleDue(userId, due!.at, now + 30_000);
  assert.is(Number(await system.redis.zscore(key, userId)), now + 30_000, 'an earlier instant still wins');
  await store.scheduleDue(userId, now + 90_000);
  assert.is(Number(await system.redis.zscore(key, userId)), now + 30_000, 'a later instant does not push a future one back');
  await store.rescheduleDue(userId, now + 30_000, null);
  assert.is(await system.redis.zscore(key, userId), null, 'handled and nothing next: removed');
});

test.run();
