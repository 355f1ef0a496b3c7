import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jwtVerify } from 'jose';
import { parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { userKeys } from '#shared/live-state/keys.ts';
import { postWebhook, signedWebhook, TEST_LIVEKIT_SECRET, type WebhookSpec } from '../support/livekit.ts';
import { createClone, createUser, nextEvent, request, startedCall, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

// Voice/video sessions in LiveKit rooms: token grants, the meter following signed webhooks (late, repeated, out of
// order), refusals of unsigned ones, and rooms closed through the RoomService when a session ends from our side.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { JOIN_TIMEOUT_MS: '500', AGENT_JOIN_TIMEOUT_MS: '800', LIVEKIT_TOKEN_TTL: '600' } });
});
test.after(async () => {
  await system?.close();
});

const secondFloor = (ms: number) => Math.floor(ms / 1000) * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function started(client: TestClient, cloneId: string, type: 'voice' | 'video' = 'voice') {
  const answer = await request(client, 'session:start', { cloneId, type });
  if (!answer.ok || !answer.livekit) throw new Error(JSON.stringify(answer));
  return { session: answer.session, livekit: answer.livekit };
}

async function hook(spec: WebhookSpec): Promise<void> {
  assert.is(await postWebhook(system.url, spec), 200);
}

/** The clone's voice agent joins the session's room (a conversation needs it: the user alone is not metered). */
const agentJoins = (sessionId: string) =>
  hook({ event: 'participant_joined', room: `session-${sessionId}`, identity: `agent-${sessionId}`, participantSid: `PA_agent_${sessionId}`, joinedAtMs: Date.now() });

async function live(userId: string, sessionId: string): Promise<Record<string, string>> {
  return system.redis.hgetall(userKeys(system.config.REDIS_PREFIX, userId).session(sessionId));
}

const settled = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');

test('room tokens grant that room only: join, microphone (and camera for video), subscribe; nothing else', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const key = new TextEncoder().encode(TEST_LIVEKIT_SECRET);
  for (const [type, sources] of [['voice', ['microphone']], ['video', ['microphone', 'camera']]] as const) {
    const { session, livekit } = await started(client, cloneId, type);
    assert.is(session.status, 'paused', 'metered only once the user is in the room');
    assert.is(livekit.room, `session-${session.id}`);
    assert.is(livekit.url, system.config.LIVEKIT_URL);
    const { payload } = await jwtVerify(livekit.token, key);
    assert.is(payload.sub, userId);
    assert.is(payload.iss, system.config.LIVEKIT_API_KEY);
    assert.is(payload.exp! - payload.nbf!, 600);
    assert.equal(payload.video, {
      room: `session-${session.id}`,
      roomJoin: true,
      canPublish: true,
      canPublishSources: sources,
      canSubscribe: true,
      canPublishData: false,
      canUpdateOwnMetadata: false,
    });
    const fresh = await request(client, 'session:token', { sessionId: session.id });
    if (!fresh.ok) throw new Error(JSON.stringify(fresh));
    assert.equal((await jwtVerify(fresh.livekit.token, key)).payload.video, payload.video);
    await request(client, 'session:end', { sessionId: session.id });
  }
  const chat = await request(client, 'session:start', { cloneId, type: 'chat' });
  assert.ok(chat.ok && chat.livekit === undefined);
  const noRoom = await request(client, 'session:token', { sessionId: chat.ok ? chat.session.id : '' });
  assert.is(!noRoom.ok && noRoom.error.code, 'invalid_state');
  const { session } = await started(client, cloneId);
  const stranger = await system.connect(await createUser(system));
  const foreign = await request(stranger, 'session:token', { sessionId: session.id });
  assert.is(!foreign.ok && foreign.error.code, 'forbidden');
  for (const c of [client, stranger]) c.disconnect();
});

test('join → active → leave → paused → rejoin → active → room_finished → ended, charged only for time in the room', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const room = `session-${session.id}`;
  await agentJoins(session.id);
  await sleep(300); // waiting for the join is free

  const joined1 = Date.now();
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_1', joinedAtMs: joined1 });
  assert.is((await live(userId, session.id)).status, 'active');
  await sleep(1500);
  const left1 = Date.now();
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_1', at: left1 });
  assert.is((await live(userId, session.id)).status, 'paused');
  await sleep(700); // out of the room: free

  const joined2 = Date.now();
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_2', joinedAtMs: joined2 });
  assert.is((await live(userId, session.id)).status, 'active');
  await sleep(1500);
  const finished = Date.now();
  await hook({ event: 'room_finished', room, at: finished });
  const ended = await live(userId, session.id);
  assert.is(ended.status, 'ended');
  assert.is(ended.reason, 'room_finished');

  // LiveKit stamps leaves in whole seconds: counted from the start of that second, never later
  const activeMs = secondFloor(left1) - joined1 + (secondFloor(finished) - joined2);
  const row = await settled(session.id);
  assert.is(Number(row.active_ms), activeMs);
  assert.is(parseMoney(row.total_cost), timeCost(parseMoney('6.0000'), activeMs));
  assert.is(row.end_reason, 'room_finished');
  assert.is(system.roomService.calls.filter((c) => c.body.room === room).length, 0, 'a finished room is not closed again');
  client.disconnect();
});

test('a duplicated, a late and an out-of-order webhook change nothing', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const room = `session-${session.id}`;
  await agentJoins(session.id);
  const join = { event: 'participant_joined', room, identity: userId, participantSid: 'PA_a', joinedAtMs: Date.now(), id: 'EV_join_a' } as const;
  await hook(join);
  const afterJoin = await live(userId, session.id);
  assert.is(afterJoin.status, 'active');
  await hook(join); // LiveKit retried it
  assert.is((await live(userId, session.id)).version, afterJoin.version, 'a repeated event id changes nothing');

  // the user rejoined from another device (PA_b); the old participant's leave arrives late: still in the room
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_b', joinedAtMs: Date.now() });
  await sleep(200);
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_a' });
  assert.is((await live(userId, session.id)).status, 'active');

  // PA_b left, then its join arrives again under another id (out of order): the user is not in the room
  await sleep(1100);
  const leftAt = Date.now();
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_b', at: leftAt });
  const paused = await live(userId, session.id);
  assert.is(paused.status, 'paused');
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_b', joinedAtMs: leftAt - 500 });
  assert.is((await live(userId, session.id)).version, paused.version, 'a join after its own leave is ignored');

  // another participant (neither the user nor the clone's agent) joining does not meter the user
  await hook({ event: 'participant_joined', room, identity: 'someone-else', participantSid: 'PA_other', joinedAtMs: Date.now() });
  assert.is((await live(userId, session.id)).status, 'paused');
  await request(client, 'session:end', { sessionId: session.id });
  const row = await settled(session.id);
  assert.is(Number(row.active_ms), secondFloor(leftAt) - join.joinedAtMs);
  client.disconnect();
});

test('a webhook that is unsigned, signed with another secret, or tampered with gets 401 and changes nothing', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const spec: WebhookSpec = { event: 'participant_joined', room: `session-${session.id}`, identity: userId, joinedAtMs: Date.now() };
  const post = (body: string, authorization?: string) =>
    fetch(`${system.url}/livekit/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/webhook+json', ...(authorization ? { authorization } : {}) },
      body,
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } }));
  const signed = await signedWebhook(spec);
  const answers = [
    await post(signed.body),
    await post(signed.body, (await signedWebhook(spec, 'another-secret-0123456789abcdef')).authorization),
    await post(signed.body.replace(userId, userId.replace(/.$/, (c) => (c === '0' ? '1' : '0'))), signed.authorization),
    await post(signed.body.replace('"PA_', '"PB_'), signed.authorization),
  ];
  for (const answer of answers) {
    assert.is(answer.status, 401);
    assert.is(answer.body.error?.code, 'unauthorized');
  }
  const state = await live(userId, session.id);
  assert.is(state.status, 'paused');
  assert.is(state.version, '1');
  assert.is(await system.redis.exists(userKeys(system.config.REDIS_PREFIX, userId).webhookIds(session.id)), 0);
  await agentJoins(session.id);
  assert.is((await post(signed.body, signed.authorization)).status, 200, 'the untouched one is accepted');
  assert.is((await live(userId, session.id)).status, 'active');
  await request(client, 'session:end', { sessionId: session.id });
  client.disconnect();
});

test('credits running out remove the user from the room and delete it through the RoomService', async () => {
  // 1 credit a second: 200 ms
  const { userId, client, session } = await startedCall(system, '0.2000', '60.0000');
  const room = `session-${session.id}`;
  await agentJoins(session.id);
  await hook({ event: 'participant_joined', room, identity: userId, joinedAtMs: Date.now() });
  const calls = await waitFor(() => {
    const mine = system.roomService.calls.filter((c) => c.body.room === room);
    return mine.length >= 2 ? mine : undefined;
  }, 5000, 'the RoomService calls');
  assert.equal(calls.map((c) => c.method), ['RemoveParticipant', 'DeleteRoom']);
  assert.is(calls[0]!.body.identity, userId);
  assert.is(calls[0]!.video.roomAdmin, true);
  assert.is(calls[0]!.video.room, room);
  assert.is(system.roomService.refused, 0);
  const row = await settled(session.id);
  assert.is(row.end_reason, 'credits_exhausted');
  assert.is(row.total_cost, '0.2000');
  // someone joining the room of the ended session is removed again
  await hook({ event: 'participant_joined', room, identity: userId, joinedAtMs: Date.now() });
  await waitFor(() => system.roomService.calls.filter((c) => c.body.room === room).length >= 4, 5000, 'the second removal');
  client.disconnect();
});

test('a user who never joins: the session ends at JOIN_TIMEOUT_MS with nothing charged', async () => {
  const { client, session } = await startedCall(system, '50.0000', '60.0000', 'video');
  const row = await settled(session.id);
  assert.is(row.end_reason, 'join_timeout');
  assert.is(row.total_cost, '0.0000');
  assert.is(Number(row.active_ms), 0);
  const ended = new Date(row.end_time!).getTime();
  assert.ok(ended - Date.parse(session.startTime) >= 500, 'not before the timeout');
  client.disconnect();
});

test('no agent: the user waits in the room free and the session ends at AGENT_JOIN_TIMEOUT_MS with nothing charged', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '60.0000');
  const ended = new Promise<{ reason: string }>((resolve) => client.on('session:ended', (event) => event.sessionId === session.id && resolve(event)));
  await hook({ event: 'participant_joined', room: `session-${session.id}`, identity: userId, joinedAtMs: Date.now() });
  assert.is((await live(userId, session.id)).status, 'paused', 'alone in the room: not metered');
  const told = await ended;
  assert.is(told.reason, 'agent_timeout', 'the user is told why');
  const row = await settled(session.id);
  assert.is(row.end_reason, 'agent_timeout');
  assert.is(row.total_cost, '0.0000');
  assert.is(Number(row.active_ms), 0);
  client.disconnect();
});

test('the user is told who is in the room: waiting to join, waiting for the agent (with its deadline), talking, the agent gone', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const room = `session-${session.id}`;
  assert.is(session.status, 'paused');
  assert.equal({ ...session.room, joinBy: typeof session.room?.joinBy }, { user: false, agent: false, held: false, joinBy: 'string', agentBy: null });
  const bound = Date.parse(session.room!.joinBy!) - Date.parse(session.startTime);
  assert.ok(bound >= 450 && bound <= 550, `joinBy is JOIN_TIMEOUT_MS after the start (${bound} ms)`);

  // the user alone: no change of status, but the widget must learn it waits for the agent now
  const alone = nextEvent(client, 'session:updated', (s) => s.id === session.id && s.room?.user === true);
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_told', joinedAtMs: Date.now() });
  const waiting = await alone;
  assert.is(waiting.status, 'paused');
  assert.equal({ ...waiting.room, agentBy: typeof waiting.room?.agentBy }, { user: true, agent: false, held: false, joinBy: null, agentBy: 'string' });

  // an event that changes nothing the user sees (a participant that was never in the room leaving) tells nothing
  const told: unknown[] = [];
  const count = (s: { id: string }) => s.id === session.id && told.push(s);
  client.on('session:updated', count);
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_never_here' });
  await sleep(300);
  client.off('session:updated', count);
  assert.is(told.length, 0, 'nothing changed: nothing told');

  // a hold while waiting changes no status, but the user's other devices learn of it
  const otherDevice = await system.connect(userId);
  const heldElsewhere = nextEvent(otherDevice, 'session:updated', (s) => s.id === session.id && s.room?.held === true);
  assert.ok((await request(client, 'session:pause', { sessionId: session.id })).ok);
  assert.is((await heldElsewhere).status, 'paused');
  const lifted = await request(client, 'session:resume', { sessionId: session.id });
  assert.is(lifted.ok && lifted.session.room?.held, false);
  otherDevice.disconnect();

  const talking = nextEvent(client, 'session:updated', (s) => s.id === session.id && s.status === 'active');
  await hook({ event: 'participant_joined', room, identity: `agent-${session.id}`, participantSid: 'PA_told_agent', joinedAtMs: Date.now() });
  assert.equal((await talking).room, { user: true, agent: true, held: false, joinBy: null, agentBy: null });

  const gone = nextEvent(client, 'session:updated', (s) => s.id === session.id && s.status === 'paused');
  await hook({ event: 'participant_left', room, identity: `agent-${session.id}`, participantSid: 'PA_told_agent' });
  const dropped = await gone;
  assert.is(dropped.reason, 'agent_left');
  assert.is(dropped.room?.agent, false);
  assert.type(dropped.room?.agentBy, 'string', 'a new wait for an agent, with its deadline');

  const ended = await request(client, 'session:end', { sessionId: session.id });
  assert.ok(ended.ok);
  assert.is(ended.ok && ended.session.room, undefined, 'an ended session has no room');
  client.disconnect();
});

test('an agent that drops mid-conversation pauses the meter until another takes over', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const room = `session-${session.id}`;
  const agent = `agent-${session.id}`;
  await hook({ event: 'participant_joined', room, identity: agent, participantSid: 'PA_agent1', joinedAtMs: Date.now() });
  const joined = Date.now();
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_u', joinedAtMs: joined });
  assert.is((await live(userId, session.id)).status, 'active');
  await sleep(1200);
  const dropped = Date.now();
  await hook({ event: 'participant_left', room, identity: agent, participantSid: 'PA_agent1', at: dropped });
  const paused = await live(userId, session.id);
  assert.is(paused.status, 'paused');
  assert.is(paused.pausedBy, 'agent_left');
  await sleep(300); // no agent: free
  const takenOver = Date.now();
  await hook({ event: 'participant_joined', room, identity: agent, participantSid: 'PA_agent2', joinedAtMs: takenOver });
  assert.is((await live(userId, session.id)).status, 'active');
  await sleep(200);
  assert.ok((await request(client, 'session:end', { sessionId: session.id })).ok);
  const row = await settled(session.id);
  const ended = new Date(row.end_time!).getTime();
  // in the room with an agent: join → drop (its second), then takeover → end
  assert.is(Number(row.active_ms), secondFloor(dropped) - joined + (ended - takenOver));
  client.disconnect();
});

test('an agent leaving a held session does not end it; lifting the hold with no agent starts the wait for one', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const room = `session-${session.id}`;
  await agentJoins(session.id);
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_held', joinedAtMs: Date.now() });
  assert.ok((await request(client, 'session:pause', { sessionId: session.id })).ok);
  await hook({ event: 'participant_left', room, identity: `agent-${session.id}`, participantSid: `PA_agent_${session.id}` });
  await sleep(1200); // past AGENT_JOIN_TIMEOUT_MS (800): held, so still here
  assert.is((await live(userId, session.id)).status, 'paused');
  const resumed = await request(client, 'session:resume', { sessionId: session.id });
  assert.is(resumed.ok && resumed.session.status, 'paused', 'no agent: not metered');
  const row = await settled(session.id);
  assert.is(row.end_reason, 'agent_timeout');
  client.disconnect();
});

test('pause holds a voice session even in the room; resume meters again only while the user is in it', async () => {
  const { userId, client, session } = await startedCall(system, '50.0000', '6.0000');
  const room = `session-${session.id}`;
  await agentJoins(session.id);
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_h', joinedAtMs: Date.now() });
  const held = await request(client, 'session:pause', { sessionId: session.id });
  assert.is(held.ok && held.session.status, 'paused');
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_h' });
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_i', joinedAtMs: Date.now() });
  assert.is((await live(userId, session.id)).status, 'paused', 'held: joining does not resume');
  const resumed = await request(client, 'session:resume', { sessionId: session.id });
  assert.is(resumed.ok && resumed.session.status, 'active');
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_i' });
  const resumedOutside = await request(client, 'session:pause', { sessionId: session.id });
  assert.ok(resumedOutside.ok);
  const again = await request(client, 'session:resume', { sessionId: session.id });
  assert.is(again.ok && again.session.status, 'paused', 'not in the room: stays paused');
  await request(client, 'session:end', { sessionId: session.id });
  client.disconnect();
});

test.run();
