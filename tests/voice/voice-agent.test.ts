import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import type { WireMessage } from '#shared/contract/socket-events.ts';
import { VoiceAgent } from '#agent/voice-agent.ts';
import { startFakeDeepgram, type FakeDeepgram } from '../support/fake-deepgram.ts';
import { postWebhook } from '../support/livekit.ts';
import { MemoryTransport } from '../support/memory-transport.ts';
import { concatSamples, silence, tone, writeWav } from '../support/wav.ts';
import { connectAgent, createClone, createUser, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

// The clone in the room, end to end on real parts: the gateway (real Postgres, Redis, Socket.IO, the OpenAI SDK
// against the local OpenAI server), the voice agent on the gateway's /agent namespace, Deepgram's SDK against the
// local Deepgram server (live transcription of real PCM, speech synthesis). Only the room's media is in memory
// (MemoryTransport, the MediaTransport interface LiveKitTransport implements).
const RATE = 16_000;
const STORY = 'Once upon a time there was a clone who talked and talked about every single thing it knew, '.repeat(4).trim();
const PRICE = 'One credit a minute. Anything else?';

let system: TestSystem;
let deepgram: FakeDeepgram;
let agent: VoiceAgent;
const transports: MemoryTransport[] = [];
let nextWav: Uint8Array = new Uint8Array();

test.before(async () => {
  deepgram = await startFakeDeepgram({ transcripts: ['how much is a minute', 'tell me a story', 'stop, what is the price'] });
  system = await startSystem({
    env: { DEEPGRAM_API_KEY: 'dg-test-key', DEEPGRAM_BASE_URL: deepgram.url },
    openai: {
      reply: (body) => (JSON.stringify(body.messages.at(-1)?.content ?? '').includes('story') ? STORY : PRICE),
      chunkDelayMs: 40,
    },
  });
  const config = { ...system.config, AGENT_GATEWAY_URL: system.url };
  agent = new VoiceAgent({
    config,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    agentId: 'test-agent',
    joinRoom: async () => {
      const transport = new MemoryTransport({ wav: nextWav });
      transports.push(transport);
      return transport;
    },
  });
  await agent.start();
});
test.after(async () => {
  await agent?.close();
  await system?.close();
  await deepgram?.close();
});

const burst = (ms: number) => tone(RATE, ms);
const quiet = (ms: number) => silence(RATE, ms);

async function voiceSession(client: TestClient, userId: string, cloneId: string, audio: Int16Array) {
  nextWav = writeWav({ sampleRate: RATE, samples: audio });
  const started = await request(client, 'session:start', { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  assert.is(await postWebhook(system.url, { event: 'participant_joined', room: `session-${sessionId}`, identity: userId, joinedAtMs: Date.now() }), 200);
  await waitFor(() => agent.sessions.includes(sessionId), 5000, 'the agent to take the session');
  // LiveKit tells of the agent's participant joining the room: the conversation is metered from here
  assert.is(await postWebhook(system.url, { event: 'participant_joined', room: `session-${sessionId}`, identity: `agent-${sessionId}`, joinedAtMs: Date.now() }), 200);
  return sessionId;
}

const storedMessages = (sessionId: string) =>
  system.database.db.selectFrom('messages').selectAll().where('session_id', '=', sessionId).orderBy('created_at').orderBy('sender_type', 'desc').execute();

test('spoken audio becomes a user message, the clone answers through the gateway, and the answer is spoken into the room', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const completed: WireMessage[] = [];
  client.on('message:completed', ({ message }) => completed.push(message));
  const deltas: string[] = [];
  client.on('message:delta', ({ delta }) => deltas.push(delta));

  const sessionId = await voiceSession(client, userId, cloneId, concatSamples(quiet(200), burst(500), quiet(800)));
  const reply = await waitFor(() => completed.find((m) => m.senderType === 'ai'), 10_000, 'the spoken reply');
  assert.is(reply.content, PRICE);
  assert.equal(completed.filter((m) => m.senderType === 'user').map((m) => m.content), ['how much is a minute'], 'the user is shown what the agent heard, once');
  assert.is(deltas.join(''), PRICE, 'the transcript streamed to the user socket');
  const transport = transports.at(-1)!;
  await waitFor(() => transport.playbacks.length > 0 && transport.playbacks.every((p) => p.ended), 10_000, 'the answer played');
  const spoken = deepgram.speaks.map((s) => s.text).join(' ');
  assert.is(spoken.replace(/\s+/g, ' ').trim(), PRICE);
  const playedMs = transport.playbacks.reduce((ms, p) => ms + p.ms, 0);
  const expectedMs = deepgram.speaks.reduce((ms, s) => ms + (deepgram.samplesFor(s.text, 24_000) / 24_000) * 1000, 0);
  assert.ok(Math.abs(playedMs - expectedMs) < 1, `played ${playedMs} ms of ${expectedMs} ms synthesized`);

  assert.is((await request(client, 'session:end', { sessionId })).ok, true);
  const rows = await waitFor(async () => {
    const r = await storedMessages(sessionId);
    return r.length === 2 ? r : undefined;
  }, 10_000, 'the messages in Postgres');
  assert.equal(rows.map((r) => [r.sender_type, r.content]), [['user', 'how much is a minute'], ['ai', PRICE]]);
  assert.ok(rows[1]!.tokens_used > 0);
  await waitFor(() => !agent.sessions.includes(sessionId), 5000, 'the agent to leave the ended session');
  client.disconnect();
});

test('the user speaking over the clone aborts its reply (stored as far as it got) and the next question is answered', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const completed: WireMessage[] = [];
  client.on('message:completed', ({ message }) => completed.push(message));
  // "tell me a story" … the story streams for seconds … "stop, what is the price"
  const audio = concatSamples(quiet(200), burst(400), quiet(1500), burst(400), quiet(800));
  const sessionId = await voiceSession(client, userId, cloneId, audio);
  const answers = await waitFor(() => {
    const ai = completed.filter((m) => m.senderType === 'ai');
    return ai.length >= 2 ? ai : undefined;
  }, 15_000, 'both replies');
  const [cut, price] = answers;
  assert.ok(cut!.content.length > 0 && cut!.content.length < STORY.length, `the story was cut: ${cut!.content.length} of ${STORY.length}`);
  assert.ok(STORY.startsWith(cut!.content.trimEnd()), 'what was produced, as produced');
  assert.is(price!.content, PRICE);
  assert.ok(transports.at(-1)!.playbacks.some((p) => p.stopped), 'the clone stopped talking');
  await request(client, 'session:end', { sessionId });
  const rows = await waitFor(async () => {
    const r = await storedMessages(sessionId);
    return r.length === 4 ? r : undefined;
  }, 10_000, 'the four messages in Postgres');
  assert.equal(rows.map((r) => r.sender_type), ['user', 'ai', 'user', 'ai']);
  assert.is(rows[0]!.content, 'tell me a story');
  assert.is(rows[2]!.content, 'stop, what is the price');
  client.disconnect();
});

test('a second agent does not serve a session another agent holds; a user token cannot open the agent namespace', async () => {
  const { io } = await import('socket.io-client');
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const sessionId = await voiceSession(client, userId, cloneId, quiet(200));
  const other = await connectAgent(system, 'other');
  const claim = (await other.timeout(5000).emitWithAck('agent:claim', { sessionId })) as { ok: boolean; claimed?: boolean };
  assert.equal(claim, { ok: true, claimed: false });
  const utterance = (await other.timeout(5000).emitWithAck('agent:utterance', { sessionId, clientMessageId: 'x', content: 'hi' })) as { ok: boolean; error?: { code: string } };
  assert.is(utterance.error?.code, 'forbidden');
  other.disconnect();
  const asUser = io(`${system.url}/agent`, { auth: { token: await system.token(userId) }, transports: ['websocket'], forceNew: true, reconnection: false });
  const refused = await new Promise<string>((resolve) => asUser.once('connect_error', (e) => resolve(e.message)));
  assert.is(refused, 'unauthorized');
  asUser.disconnect();
  await request(client, 'session:end', { sessionId });
  client.disconnect();
});

test('a session whose agent died is offered again by the sweep once the claim lapses', async () => {
  const { agentClaimKey } = await import('#shared/live-state/keys.ts');
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const sessionId = await voiceSession(client, userId, cloneId, quiet(200));
  const standby = await connectAgent(system, 'standby');
  await new Promise((resolve) => standby.once('connect', () => resolve(undefined)));
  const offers: string[] = [];
  standby.on('agent:dispatch', (d: { sessionId: string }) => offers.push(d.sessionId));
  assert.is((await system.gateway.sweep()).offered, 0, 'held by the running agent: not offered');
  await system.redis.del(agentClaimKey(system.config.REDIS_PREFIX, sessionId)); // as if its agent died 30 s ago
  assert.ok(((await system.gateway.sweep()).offered) >= 1);
  await waitFor(() => offers.includes(sessionId), 5000, 'the offer');
  const claim = (await standby.timeout(5000).emitWithAck('agent:claim', { sessionId })) as { ok: boolean; claimed?: boolean };
  assert.is(claim.claimed, true);
  standby.disconnect();
  await request(client, 'session:end', { sessionId });
  client.disconnect();
});

test.run();
