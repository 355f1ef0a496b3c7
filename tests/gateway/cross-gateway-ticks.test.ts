/**
 * Meter ticks come from the gateway holding the socket. A session made active through another gateway (the user's
 * second tab, a LiveKit webhook landing anywhere) must be ticked on every gateway holding the user's sockets, even
 * one that had stopped watching the user because nothing of theirs was active — and by the gateway that made the
 * change itself when it holds the sockets (a LiveKit webhook landing on it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Socket } from 'socket.io-client';
import { createClone, createUser, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';
import { postWebhook } from '../support/livekit.ts';

let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { METER_TICK_MS: '100' } });
});
test.after(async () => {
  await system?.close();
});

const ticksOf = (client: Socket) => {
  const ticks: string[] = [];
  client.on('meter:tick', (tick: { sessionId: string }) => ticks.push(tick.sessionId));
  return ticks;
};

test('a chat started through gateway B is ticked on the socket held by gateway A', async () => {
  const b = await system.addGateway();
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const onA = await system.connect(userId);
  const onB = await b.connect(userId);
  // A watched the user from the connect; its first tick found nothing active and stopped watching
  await waitFor(() => !system.gateway.isMetering(userId), 5000, 'A to stop watching the idle user');
  const ticksOnA = ticksOf(onA);
  const ticksOnB = ticksOf(onB);
  const started = await request(onB, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  await waitFor(() => ticksOnA.filter((id) => id === sessionId).length >= 3, 5000, 'ticks on A');
  assert.ok(ticksOnB.includes(sessionId), 'B ticks its own socket too');
  // and A stops again once nothing is active
  const ended = await request(onB, 'session:end', { sessionId });
  assert.ok(ended.ok);
  await waitFor(() => !system.gateway.isMetering(userId), 5000, 'A to stop watching after the end');
  await b.close();
});

test('a voice session made active by a LiveKit join webhook on the gateway holding the socket is ticked there', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  // waiting for the join, nothing is active: the gateway's tick stops watching the user
  await waitFor(() => !system.gateway.isMetering(userId), 5000, 'the gateway to stop watching');
  const ticks = ticksOf(client);
  // the clone's agent and the user in the room: a conversation, metered
  assert.is(await postWebhook(system.url, { event: 'participant_joined', room: `session-${sessionId}`, identity: `agent-${sessionId}`, joinedAtMs: Date.now() }), 200);
  const status = await postWebhook(system.url, { event: 'participant_joined', room: `session-${sessionId}`, identity: userId, joinedAtMs: Date.now() });
  assert.is(status, 200);
  await waitFor(() => ticks.filter((id) => id === sessionId).length >= 3, 5000, 'ticks after the join');
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
});

test.run();
