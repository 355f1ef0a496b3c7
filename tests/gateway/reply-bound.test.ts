import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { io } from 'socket.io-client';
import type { Gateway } from '#gateway/gateway.ts';
import type { WireMessage } from '#shared/contract/socket-events.ts';
import { GatedReplies, startGatedGateway } from '../support/gated-replies.ts';
import { createClone, createUser, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

let system: TestSystem;
let gateway: Gateway;
let url: string;
// a gateway whose replies wait at a gate the test opens, with at most two replies generating at once
const replies = new GatedReplies();
test.before(async () => {
  system = await startSystem({ env: { MAX_OPEN_SESSIONS: '5' } });
  ({ gateway, url } = await startGatedGateway(system, replies, { maxRepliesInFlight: 2 }));
});
test.after(async () => {
  await gateway?.close();
  await system?.close();
});

async function connect(userId: string): Promise<TestClient> {
  const client: TestClient = io(url, { auth: { token: await system.token(userId) }, transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('connect_error', reject);
  });
  return client;
}

/** Starts `count` chats of the clone one after another; their ids in order. */
async function startChats(client: TestClient, cloneId: string, count: number): Promise<string[]> {
  const sessions: string[] = [];
  for (let i = 0; i < count; i++) {
    const started = await request(client, 'session:start', { cloneId, type: 'chat' });
    if (!started.ok) throw new Error(JSON.stringify(started));
    sessions.push(started.session.id);
  }
  return sessions;
}

/** The gateway's replies generating and waiting, as its `/metrics` reports them (`gateway_replies`). */
async function replyLoad(): Promise<{ active: number; queued: number }> {
  const metric = await gateway.registry.getSingleMetric('gateway_replies')!.get();
  const of = (state: string) => metric.values.find((value) => value.labels.state === state)?.value ?? 0;
  return { active: of('active'), queued: of('queued') };
}

test('beyond the bound, replies queue in order instead of streaming at once; every one comes, none is dropped', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '0.0100');
  const client = await connect(userId);
  const completed: WireMessage[] = [];
  client.on('message:completed', ({ message }) => completed.push(message));
  const sessions = await startChats(client, cloneId, 4);
  // every message is acknowledged at once, whether its reply generates or waits
  for (const [i, sessionId] of sessions.entries()) {
    const sent = await request(client, 'message:send', { sessionId, clientMessageId: `q${i}`, content: `q${i}` });
    assert.ok(sent.ok, JSON.stringify(sent));
  }
  await waitFor(() => replies.started.length === 2, 5000, 'two replies generating');
  assert.equal(await replyLoad(), { active: 2, queued: 2 });
  assert.equal(replies.started, ['q0', 'q1']);
  for (let i = 0; i < 4; i++) {
    await waitFor(() => replies.running > 0, 5000, 'a reply at the gate');
    replies.open();
    await waitFor(() => completed.length === i + 1, 5000, `reply ${i + 1}`);
  }
  assert.equal(replies.started, ['q0', 'q1', 'q2', 'q3'], 'in the order the messages came');
  assert.is(replies.mostAtOnce, 2);
  assert.equal(completed.map((m) => m.content).sort(), ['answer to q0', 'answer to q1', 'answer to q2', 'answer to q3']);
  assert.equal(await replyLoad(), { active: 0, queued: 0 });
  client.disconnect();
});

test('a reply still waiting when its session pauses is dropped from the queue: nothing produced, nothing billed', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '0.0100');
  const client = await connect(userId);
  const completed: WireMessage[] = [];
  client.on('message:completed', ({ message }) => completed.push(message));
  const sessions = await startChats(client, cloneId, 3);
  for (const [i, sessionId] of sessions.entries()) await request(client, 'message:send', { sessionId, clientMessageId: `p${i}`, content: `p${i}` });
  await waitFor(async () => (await replyLoad()).queued === 1, 5000, 'the third reply waiting');
  const paused = await request(client, 'session:pause', { sessionId: sessions[2]! });
  assert.ok(paused.ok);
  await waitFor(async () => (await replyLoad()).queued === 0, 5000, 'the waiting reply gone');
  replies.open();
  replies.open();
  await waitFor(() => completed.length === 2, 5000, 'the two generating replies');
  assert.not.ok(replies.started.includes('p2'), 'the paused session\'s reply never started');
  const history = await request(client, 'session:history', { sessionId: sessions[2]! });
  assert.equal(history.ok && history.messages.map((m) => m.senderType), ['user'], 'no reply stored for it');
  client.disconnect();
});

test.run();
