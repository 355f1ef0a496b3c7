import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { userKeys } from '#shared/live-state/keys.ts';
import { postWebhook } from '../support/livekit.ts';
import { connectAgent, nextEvent, request, startedCall, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// Idle voice: a conversation in which neither side has spoken for VOICE_IDLE_MS pauses like an idle chat and tells
// the user; speaking again (the agent tells the gateway what its speech-to-text heard) resumes it. Charged: only the
// time until the silence rule and after the speech.
const IDLE_MS = 700;
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { VOICE_IDLE_MS: String(IDLE_MS), LIVEKIT_TOKEN_TTL: '600' } });
});
test.after(async () => {
  await system?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const settled = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');

test('silence pauses a voice conversation and tells the user; speech resumes it; only the talking time is charged', async () => {
  const { userId, client, session, room } = await startedCall(system, '50.0000', '6.0000');
  const sessionId = session.id;
  const agent = await connectAgent(system, 'idle-test');
  const claim = (await agent.timeout(5000).emitWithAck('agent:claim', { sessionId })) as { ok: boolean; claimed?: boolean };
  assert.equal({ ok: claim.ok, claimed: claim.claimed }, { ok: true, claimed: true });
  assert.is(await postWebhook(system.url, { event: 'participant_joined', room, identity: `agent-${sessionId}`, joinedAtMs: Date.now() }), 200);
  const joined = Date.now();
  assert.is(await postWebhook(system.url, { event: 'participant_joined', room, identity: userId, joinedAtMs: joined }), 200);
  const live = () => system.redis.hgetall(userKeys(system.config.REDIS_PREFIX, userId).session(sessionId));
  assert.is((await live()).status, 'active');

  // nobody speaks: paused for silence at VOICE_IDLE_MS, and the user is told
  const told = await nextEvent(client, 'session:updated', (s) => s.id === sessionId && s.status === 'paused', IDLE_MS + 3000);
  assert.is(told.reason, 'voice_idle', 'the user is told why');
  const paused = await live();
  assert.is(paused.pausedBy, 'voice_idle');
  assert.is(Number(paused.activeMs), IDLE_MS, 'charged exactly to the silence rule');
  await sleep(300); // silent and paused: free

  // the user speaks (the agent heard it): metered again
  const spoke = Date.now();
  const answer = (await agent.timeout(5000).emitWithAck('agent:voice-activity', { sessionId })) as { ok: boolean };
  assert.ok(answer.ok);
  assert.is((await live()).status, 'active');
  await sleep(300);
  // activity keeps it going past the idle bound
  assert.ok(((await agent.timeout(5000).emitWithAck('agent:voice-activity', { sessionId })) as { ok: boolean }).ok);
  await sleep(500);
  assert.is((await live()).status, 'active', 'spoken within VOICE_IDLE_MS: still active');
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const row = await settled(sessionId);
  const endedAt = new Date(row.end_time!).getTime();
  const resumedAt = Number((await live()).resumedAt);
  assert.ok(resumedAt >= spoke - 50 && resumedAt <= spoke + 1000, 'resumed at the speech');
  assert.is(Number(row.active_ms), IDLE_MS + (endedAt - resumedAt));
  assert.ok(joined > 0);
  agent.disconnect();
  client.disconnect();
});

test('only the agent serving the session may tell of voice activity', async () => {
  const { client, session } = await startedCall(system, '50.0000', '6.0000');
  const stranger = await connectAgent(system, 'stranger');
  const answer = (await stranger.timeout(5000).emitWithAck('agent:voice-activity', { sessionId: session.id })) as { ok: boolean; error?: { code: string } };
  assert.is(answer.error?.code, 'forbidden');
  stranger.disconnect();
  await request(client, 'session:end', { sessionId: session.id });
  client.disconnect();
});

test.run();
