import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { createClone, createUser, nextEvent, request, startCluster, waitFor, type Cluster, type ProcessHandle } from '../support/processes.ts';
import { startInRoom } from '../support/system.ts';

// Several gateway processes on one Redis, one billing worker; gateways are SIGKILLed and SIGTERMed for real.
let cluster: Cluster;
let billing: ProcessHandle;
test.before(async () => {
  cluster = await startCluster({ env: { LEASE_MS: '1000', PRESENCE_TIMEOUT_MS: '3000', DUE_POLL_MS: '50', MIN_START_SECONDS: '0' } });
  billing = await cluster.startBilling('billing');
});
test.after(async () => {
  await cluster?.close();
});

const db = () => cluster.database.db;
const settled = (sessionId: string) =>
  waitFor(() => db().selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 20_000, `settlement of ${sessionId}`);
const ok = <T extends { ok: boolean }>(answer: T): Extract<T, { ok: true }> => {
  if (!answer.ok) throw new Error(JSON.stringify(answer));
  return answer as Extract<T, { ok: true }>;
};

test('a client on gateway A sees its session ended through gateway B', async () => {
  const [a, b] = await Promise.all([cluster.startGateway('A'), cluster.startGateway('B')]);
  const userId = await createUser(db(), '20.0000');
  const { cloneId } = await createClone(db(), '1.0000');
  const onA = await cluster.connect(a, userId);
  const onB = await cluster.connect(b, userId);
  const { session } = ok(await request(onA, 'session:start', { cloneId, type: 'chat' }));
  const endedOnA = nextEvent(onA, 'session:ended', (e) => e.sessionId === session.id, 5000);
  const updatedOnA = nextEvent(onA, 'session:updated', (s) => s.id === session.id && s.status === 'ended', 5000);
  const ended = ok(await request(onB, 'session:end', { sessionId: session.id })).session;
  assert.is((await endedOnA).reason, 'user');
  assert.is((await updatedOnA).cost, ended.cost);
  // meter ticks come from the gateway holding the socket, once each
  const ticks: string[] = [];
  onA.on('meter:tick', (t) => ticks.push(t.sessionId));
  // started through B: A, holding the socket, is told to meter the user (tests/gateway/cross-gateway-ticks.test.ts)
  const second = ok(await startInRoom(b, onB, { cloneId, type: 'voice' })).session;
  await waitFor(() => ticks.filter((id) => id === second.id).length >= 2, 15_000, 'ticks on A');
  ok(await request(onA, 'session:end', { sessionId: second.id }));
  assert.is((await settled(session.id)).total_cost, ended.cost);
  onA.disconnect();
  onB.disconnect();
  await Promise.all([a.kill('SIGTERM'), b.kill('SIGTERM')]);
});

test('SIGKILL the gateway holding a chat: the client comes back on the other one, resumes, and the time away is not charged', async () => {
  const [a, b] = await Promise.all([cluster.startGateway('A2'), cluster.startGateway('B2')]);
  const userId = await createUser(db(), '20.0000');
  const { cloneId } = await createClone(db(), '6.0000');
  const client = await cluster.connect(a, userId);
  const startedAt = Date.now();
  const { session } = ok(await request(client, 'session:start', { cloneId, type: 'chat' }));
  const before = ok(await request(client, 'message:send', { sessionId: session.id, clientMessageId: 'before', content: 'hello' })).message;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  await a.kill('SIGKILL');
  const killedAt = Date.now();
  // a client's reconnect backoff, then the other gateway behind the load balancer
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const again = await cluster.connect(b, userId);
  const got = ok(await request(again, 'session:get', { sessionId: session.id })).session;
  assert.is(got.status, 'paused', 'paused where the dead gateway last saw the user');
  const resumedAt = Date.now();
  ok(await request(again, 'session:resume', { sessionId: session.id }));
  const reply = nextEvent(again, 'message:completed', (c) => c.sessionId === session.id, 10_000);
  ok(await request(again, 'message:send', { sessionId: session.id, clientMessageId: 'after', content: 'still there?' }));
  await reply;
  const ended = ok(await request(again, 'session:end', { sessionId: session.id })).session;
  const endedAt = Date.now();
  const row = await settled(session.id);
  const connectedMs = killedAt - startedAt + (endedAt - resumedAt);
  assert.ok(Number(row.active_ms) <= connectedMs, `charged ${row.active_ms} ms of ${connectedMs} ms connected`);
  // A saw the user at least when it took the message (later sightings — ticks, heartbeats — depend on its load)
  const seenMs = Date.parse(before.createdAt) - Date.parse(session.startTime);
  assert.ok(Number(row.active_ms) >= seenMs, `the time before the crash is charged: ${row.active_ms} ms ≥ ${seenMs} ms`);
  assert.is(row.total_cost, ended.cost);
  assert.is(parseMoney(row.total_cost), timeCost(parseMoney('6.0000'), Number(row.active_ms)));
  const messages = await db().selectFrom('messages').select('client_message_id').where('session_id', '=', session.id).where('sender_type', '=', 'user').execute();
  assert.equal(messages.map((m) => m.client_message_id).sort(), ['after', 'before']);
  again.disconnect();
  await b.kill('SIGTERM');
});

test('credits run out while the only gateway that saw the session is dead: another ends it at the exact charge', async () => {
  const [a, b] = await Promise.all([cluster.startGateway('A3'), cluster.startGateway('B3')]);
  const userId = await createUser(db(), '0.5001');
  const { cloneId } = await createClone(db(), '6.0000'); // 0.1 credit a second: about 5 s
  const client = await cluster.connect(a, userId);
  const { session } = ok(await startInRoom(a, client, { cloneId, type: 'voice' }));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await a.kill('SIGKILL');
  const row = await settled(session.id);
  assert.is(row.end_reason, 'credits_exhausted');
  assert.is(row.total_cost, '0.5001');
  const user = await db().selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '0.0000');
  await b.kill('SIGTERM');
});

test('SIGTERM: the gateway exits 0, its client reconnects elsewhere and the session carries on', async () => {
  const [a, b] = await Promise.all([cluster.startGateway('A4'), cluster.startGateway('B4')]);
  const userId = await createUser(db(), '20.0000');
  const { cloneId } = await createClone(db(), '1.0000');
  const client = await cluster.connect(a, userId);
  const { session } = ok(await request(client, 'session:start', { cloneId, type: 'chat' }));
  const dropped = new Promise<string>((resolve) => client.once('disconnect', (reason) => resolve(reason)));
  assert.is(await a.kill('SIGTERM'), 0);
  assert.is(await dropped, 'transport close', 'a reason on which socket.io-client reconnects');
  const again = await cluster.connect(b, userId);
  const got = ok(await request(again, 'session:get', { sessionId: session.id })).session;
  assert.is(got.status, 'active');
  ok(await request(again, 'message:send', { sessionId: session.id, clientMessageId: 'x', content: 'after the restart' }));
  ok(await request(again, 'session:end', { sessionId: session.id }));
  await settled(session.id);
  again.disconnect();
  await b.kill('SIGTERM');
  assert.match(billing.output(), /billing worker started/);
});

test.run();
