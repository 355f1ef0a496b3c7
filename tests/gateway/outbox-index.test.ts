import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { outboxIndexBackfilledKey, outboxIndexKey, userIdOfKey, userKeys } from '#shared/live-state/keys.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { createClone, createUser, request, startSystem, unreachableWhile, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

// The recovery sweep finds outboxes through an index the Lua scripts keep (no keyspace SCAN): every outbox holding
// facts is in it, an emptied one leaves it.
let system: TestSystem;
let queueDown = false;
test.before(async () => {
  system = await startSystem({
    env: { OUTBOX_GRACE_MS: '0', RECONCILE_MS: '600000' },
    wrapJobs: unreachableWhile(() => queueDown),
  });
});
test.after(async () => {
  await system?.close();
});

const indexKey = () => outboxIndexKey(system.config.REDIS_PREFIX);

test('an outbox holding facts is in the index until the relay empties it', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  const started = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  // relayed at once: the outbox is empty again and out of the index
  await waitFor(async () => (await system.redis.xlen(keys.outbox)) === 0, 5000, 'the relay');
  assert.is(await system.redis.sismember(indexKey(), keys.outbox), 0);

  queueDown = true;
  const ended = await request(client, 'session:end', { sessionId: started.session.id }, 10_000);
  assert.is(ended.ok ? 'ok' : ended.error.code, 'ok', 'answered at once: the end and its facts are in the outbox');
  await system.gateway.relaysSettled(); // the relay behind the answer gave up: the queue was down for every retry
  assert.ok((await system.redis.xlen(keys.outbox)) >= 2, 'the end and its settlement wait in the outbox');
  assert.is(await system.redis.sismember(indexKey(), keys.outbox), 1, 'indexed by the script that wrote them');
  assert.ok((await system.store.usersWithOutbox()).includes(userId));

  queueDown = false;
  assert.ok((await system.gateway.sweep()).relayed >= 2);
  assert.is(await system.redis.xlen(keys.outbox), 0);
  assert.is(await system.redis.sismember(indexKey(), keys.outbox), 0, 'emptied: out of the index');
  assert.not.ok((await system.store.usersWithOutbox()).includes(userId));
  client.disconnect();
});

test('an indexed outbox found empty leaves the index; outboxes written before the index are found by one scan, ever', async () => {
  const ghost = userKeys(system.config.REDIS_PREFIX, randomUUID()).outbox;
  await system.redis.sadd(indexKey(), ghost);
  await system.gateway.sweep();
  assert.is(await system.redis.sismember(indexKey(), ghost), 0, 'nothing in it: dropped from the index');

  // an outbox with a fact but not indexed, as a gateway of the version before the index left it
  const userId = randomUUID();
  const legacy = userKeys(system.config.REDIS_PREFIX, userId).outbox;
  await system.redis.xadd(legacy, '*', 'kind', 'checkpoint', 'data', '{}');
  await system.redis.srem(indexKey(), legacy);
  // as right after the upgrade: no process has looked for such outboxes yet
  const marker = outboxIndexBackfilledKey(system.config.REDIS_PREFIX);
  await system.redis.del(marker);
  const fresh = new SessionStore(system.redis, storeOptions(system.config));
  assert.ok((await fresh.usersWithOutbox()).includes(userId), 'the first look after the upgrade scans');
  assert.is(await system.redis.sismember(indexKey(), legacy), 1, 'and indexes what it found');
  assert.is(await system.redis.exists(marker), 1, 'and marks it done');
  // every later process trusts the index: an unindexed outbox now is not looked for (none can be written any more)
  const later = userKeys(system.config.REDIS_PREFIX, randomUUID()).outbox;
  await system.redis.xadd(later, '*', 'kind', 'checkpoint', 'data', '{}');
  await system.redis.srem(indexKey(), later);
  const another = new SessionStore(system.redis, storeOptions(system.config));
  assert.is((await another.usersWithOutbox()).includes(userIdOfKey(later)!), false, 'no second scan');
  await system.redis.del(legacy, later);
  await system.redis.srem(indexKey(), legacy);
});

test.run();
