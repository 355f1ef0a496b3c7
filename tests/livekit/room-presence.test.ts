import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { userKeys } from '#shared/live-state/keys.ts';
import { postWebhook, type WebhookSpec } from '../support/livekit.ts';
import { request, startedCall, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

// Presence checked against the room (LiveKit's RoomService), not only told by webhooks: a lost participant_left or
// room_finished stops the charge within one ROOM_CHECK_MS, at the last instant the user's presence was proved; a
// webhook arriving after the check changes nothing twice; a RoomService that does not answer proves nothing.
const CHECK_MS = 400;
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { ROOM_CHECK_MS: String(CHECK_MS), LIVEKIT_TOKEN_TTL: '600' } });
});
test.after(async () => {
  await system?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hook = async (spec: WebhookSpec) => assert.is(await postWebhook(system.url, spec), 200);
const settled = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');
const live = (userId: string, sessionId: string) => system.redis.hgetall(userKeys(system.config.REDIS_PREFIX, userId).session(sessionId));

async function inRoom(): Promise<{ userId: string; client: TestClient; sessionId: string; room: string; joinedAt: number }> {
  const { userId, client, session, room } = await startedCall(system, '50.0000', '60.0000');
  const sessionId = session.id;
  system.roomService.rooms.set(room, [userId, `agent-${sessionId}`]);
  await hook({ event: 'participant_joined', room, identity: `agent-${sessionId}`, participantSid: 'PA_agent', joinedAtMs: Date.now() });
  const joinedAt = Date.now();
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_user', joinedAtMs: joinedAt });
  // the active session reaches Postgres, where the check finds it (its state job, relayed)
  await waitFor(async () => (await system.database.db.selectFrom('sessions').select('status').where('id', '=', sessionId).executeTakeFirst())?.status === 'active', 5000, 'active in Postgres');
  return { userId, client, sessionId, room, joinedAt };
}

test('a lost participant_left: the check pauses the session at the last instant it saw the user; the late webhook changes nothing', async () => {
  const { userId, client, sessionId, room, joinedAt } = await inRoom();
  // a few checks see the user
  await waitFor(async () => Number((await live(userId, sessionId)).roomSeenAt ?? 0) > joinedAt, 5000, 'a check that saw the user');
  await sleep(CHECK_MS * 2);
  // the user leaves; LiveKit's participant_left never arrives
  const lastSeen = Number((await live(userId, sessionId)).roomSeenAt);
  system.roomService.rooms.set(room, [`agent-${sessionId}`]);
  const leftAt = Date.now();
  await waitFor(async () => (await live(userId, sessionId)).status === 'paused', CHECK_MS * 3 + 2000, 'paused by the check');
  const pausedWithin = Date.now() - leftAt;
  const state = await live(userId, sessionId);
  assert.is(state.status, 'paused');
  const provedUntil = Number(state.roomSeenAt);
  assert.ok(provedUntil >= lastSeen && provedUntil <= leftAt + 50, 'the last sighting is from before the user left');
  // the webhook, delivered late: nothing changes twice
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_user', at: leftAt });
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const row = await settled(sessionId);
  // charged exactly to the last proved presence: the pause instant is the last check that saw the user
  assert.is(Number(row.active_ms), provedUntil - joinedAt, `active ${row.active_ms} ms, proved ${provedUntil - joinedAt} ms`);
  assert.ok(pausedWithin <= CHECK_MS * 2 + 1000, `paused ${pausedWithin} ms after the user left`);
  client.disconnect();
});

test('a lost room_finished: the check ends the session at the last proved presence', async () => {
  const { userId, client, sessionId, room, joinedAt } = await inRoom();
  await waitFor(async () => Number((await live(userId, sessionId)).roomSeenAt ?? 0) > joinedAt, 5000, 'a check that saw the user');
  system.roomService.rooms.delete(room);
  await waitFor(async () => (await live(userId, sessionId)).status === 'ended', CHECK_MS * 3 + 2000, 'ended by the check');
  const state = await live(userId, sessionId);
  assert.is(state.reason, 'room_finished');
  const row = await settled(sessionId);
  assert.is(Number(row.active_ms), Number(state.roomSeenAt) - joinedAt);
  client.disconnect();
});

test('the agent gone without a webhook: the check pauses the conversation at the last instant it saw both', async () => {
  const { userId, client, sessionId, room, joinedAt } = await inRoom();
  await waitFor(async () => Number((await live(userId, sessionId)).roomSeenAt ?? 0) > joinedAt, 5000, 'a check that saw both');
  system.roomService.rooms.set(room, [userId]);
  await waitFor(async () => (await live(userId, sessionId)).status === 'paused', CHECK_MS * 3 + 2000, 'paused by the check');
  const state = await live(userId, sessionId);
  assert.is(state.pausedBy, 'agent_left');
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const row = await settled(sessionId);
  assert.is(Number(row.active_ms), Number(state.roomSeenAt) - joinedAt);
  client.disconnect();
});

test('a RoomService that does not answer proves nothing: the session goes on as the webhooks said', async () => {
  const { userId, client, sessionId, room } = await inRoom();
  system.roomService.rooms.delete(room);
  system.roomService.failing = true;
  try {
    await sleep(CHECK_MS * 3);
    assert.is((await live(userId, sessionId)).status, 'active');
  } finally {
    system.roomService.failing = false;
  }
  system.roomService.rooms.set(room, [userId]);
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  client.disconnect();
});

test.run();
