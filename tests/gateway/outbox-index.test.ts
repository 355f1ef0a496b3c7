import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { outboxIndexKey, outboxScanKey, userBucket, userIdOfKey, userKeys } from '#shared/live-state/keys.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { createClone, createUser, request, startSystem, unreachableWhile, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

// The recovery sweep finds outboxes through an index kept beside the Lua scripts (in buckets, no keyspace SCAN): an
// outbox a script started is in it, an emptied one leaves it; what the index missed, a rare keyspace walk finds.
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

const indexKey = (outbox: string) => outboxIndexKey(system.config.REDIS_PREFIX, userBucket(userIdOfKey(outbox)!));

test('an outbox holding facts is in the index until the relay empties it', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  const started = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  // relayed at once: the outbox is empty again and out of the index
  await waitFor(async () => (await system.redis.xlen(keys.outbox)) === 0, 5000, 'the relay');
  assert.is(await system.redis.sismember(indexKey(keys.outbox), keys.outbox), 0);

  queueDown = true;
  const ended = await request(client, 'session:end', { sessionId: started.session.id }, 10_000);
  assert.is(ended.ok ? 'ok' : ended.error.code, 'ok', 'answered at once: the end and its facts are in the outbox');
  await system.gateway.relaysSettled(); // the relay behind the answer gave up: the queue was down for every retry
  assert.ok((await system.redis.xlen(keys.outbox)) >= 2, 'the end and its settlement wait in the outbox');
  assert.is(await system.redis.sismember(indexKey(keys.outbox), keys.outbox), 1, 'indexed after the script that wrote them');
  assert.ok((await system.store.usersWithOutbox()).includes(userId));

  queueDown = false;
  assert.ok((await system.gateway.sweep()).relayed >= 2);
  assert.is(await system.redis.xlen(keys.outbox), 0);
  assert.is(await system.redis.sismember(indexKey(keys.outbox), keys.outbox), 0, 'emptied: out of the index');
  assert.not.ok((await system.store.usersWithOutbox()).includes(userId));
  client.disconnect();
});

test('an indexed outbox found empty leaves the index; one process walks the keyspace for unindexed ones every OUTBOX_SCAN_MS', async () => {
  const ghost = userKeys(system.config.REDIS_PREFIX, randomUUID()).outbox;
  await system.redis.sadd(indexKey(ghost), ghost);
  await system.gateway.sweep();
  assert.is(await system.redis.sismember(indexKey(ghost), ghost), 0, 'nothing in it: dropped from the index');

  // an outbox with a fact but not indexed, as a gateway that died between its script and the index write leaves it
  const userId = randomUUID();
  const lost = userKeys(system.config.REDIS_PREFIX, userId).outbox;
  await system.redis.xadd(lost, '*', 'kind', 'checkpoint', 'data', '{}');
  const marker = outboxScanKey(system.config.REDIS_PREFIX);
  // while another process's walk is recent, the index alone is read
  await system.redis.set(marker, 'another process', 'PX', 60_000);
  const store = new SessionStore(system.redis, storeOptions(system.config));
  assert.is((await store.usersWithOutbox()).includes(userId), false, 'not walked: the last walk is recent');
  // Redis came back from a restart (its last index writes may be gone): this process walks at its next sweep
  store.requestOutboxWalk();
  assert.ok((await store.usersWithOutbox()).includes(userId), 'walked when asked, whatever the marker says');
  await system.redis.srem(indexKey(lost), lost);
  assert.is((await store.usersWithOutbox()).includes(userId), false, 'once: the request is used up');
  // once it lapses, the next sweep of any process walks, finds it and indexes it
  await system.redis.del(marker);
  assert.ok((await store.usersWithOutbox()).includes(userId), 'the walk finds it');
  assert.is(await system.redis.sismember(indexKey(lost), lost), 1, 'and indexes it');
  assert.ok(Number(await system.redis.pttl(marker)) > 0, 'and marks the walk for OUTBOX_SCAN_MS');
  await system.redis.del(lost);
  await system.redis.srem(indexKey(lost), lost);
});

test.run();
