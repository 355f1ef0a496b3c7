import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { userKeys } from '#shared/live-state/keys.ts';
import { startRedisCluster, type RedisCluster } from '../../scripts/lib/private-redis-cluster.ts';
import { connectedUserAndClone, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// On a real Redis Cluster (3 masters, 3 replicas) with REDIS_ACK_REPLICAS=1: a user message is acknowledged only
// once a replica holds it, so the failover of its master cannot lose it; with the replica gone, the send is refused
// `unavailable` (nothing acknowledged), and its retry, once the replica is back, answers with the one stored message.
let cluster: RedisCluster;
let system: TestSystem;
test.before(async () => {
  cluster = await startRedisCluster();
  system = await startSystem({ env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_ACK_REPLICAS: '1', REDIS_ACK_TIMEOUT_MS: '1000', IDLE_PAUSE_MS: '600000' } });
});
test.after(async () => {
  await system?.close();
  // the adapter's stream reader lets go of its connection when its blocking read returns (at most its 1 s block): a
  // cluster killed before would leave that client reconnecting forever, and this process with it
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await cluster?.close();
});

/** The ports of the master serving `key`'s slot and of its (one) replica. */
async function slotNodes(key: string): Promise<{ master: number; replica: number }> {
  const { master, replicas } = await cluster.nodesOfKey(key);
  return { master, replica: replicas[0]! };
}

const node = (port: number) => cluster.nodes.find((n) => n.port === port)!;

test('acknowledged after a replica holds it; refused while no replica answers; the retry finds the one message', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '1.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const cmids = userKeys(system.config.REDIS_PREFIX, userId).clientMessageIds(sessionId);

  const first = await request(client, 'message:send', { sessionId, clientMessageId: 'one', content: 'first' });
  assert.ok(first.ok, JSON.stringify(first));
  const { master, replica } = await slotNodes(cmids);
  const onReplica = new Redis({ port: replica, host: '127.0.0.1', lazyConnect: true });
  await onReplica.connect();
  await onReplica.call('READONLY');
  assert.ok(await onReplica.hget(cmids, 'one'), 'the replica holds the acknowledged message');
  onReplica.disconnect();

  await node(replica).kill();
  const refused = await request(client, 'message:send', { sessionId, clientMessageId: 'two', content: 'second' });
  assert.equal(!refused.ok && [refused.error.code, typeof refused.error.retryAfterMs], ['unavailable', 'number'], JSON.stringify(refused));
  await node(replica).restart();
  await cluster.waitHealthy();
  const retried = await request(client, 'message:send', { sessionId, clientMessageId: 'two', content: 'second' });
  assert.ok(retried.ok, JSON.stringify(retried));
  const again = await request(client, 'message:send', { sessionId, clientMessageId: 'two', content: 'second' });
  assert.is(again.ok && again.message.id, retried.ok && retried.message.id, 'stored once');
  const history = await request(client, 'session:history', { sessionId });
  assert.is(history.ok && history.messages.filter((m) => m.senderType === 'user' && m.content === 'second').length, 1);
  assert.ok(master > 0);
  client.disconnect();
});

test('a master fails over: every message acknowledged before is still there', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '1.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const acknowledged: string[] = [];
  for (let i = 0; i < 20; i++) {
    const sent = await request(client, 'message:send', { sessionId, clientMessageId: `m${i}`, content: `question ${i}` });
    if (sent.ok) acknowledged.push(sent.message.id);
  }
  assert.is(acknowledged.length, 20);
  const { master } = await slotNodes(userKeys(system.config.REDIS_PREFIX, userId).session(sessionId));
  const failover = await cluster.killMaster(master);
  assert.ok(failover.failoverMs > 0);
  const history = await waitFor(async () => {
    const got = await request(client, 'session:history', { sessionId }, 10_000).catch(() => undefined);
    return got?.ok ? got : undefined;
  }, 30_000, 'the history after the failover');
  const stored = new Set(history.ok ? history.messages.map((m) => m.id) : []);
  assert.equal(acknowledged.filter((id) => !stored.has(id)), [], 'no acknowledged message lost');
  await node(master).restart(); // back as a replica of the promoted one
  await cluster.waitHealthy();
  client.disconnect();
});

test.run();
