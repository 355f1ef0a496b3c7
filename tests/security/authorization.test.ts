/**
 * Authorization: a user can neither see, act on, rate nor hear anything of another user's session (every client
 * event, live and settled; the events of a session reach only its user's sockets); a creator cannot read or add to
 * another creator's knowledge base; a user or creator gets 403 from the ledger API even about their own session,
 * and nothing is written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { userKeys } from '#shared/live-state/keys.ts';
import { billingAppOf, createClone, createUser, nextEvent, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

const REPLY_WORDS = 40;
const REPLY = Array.from({ length: REPLY_WORDS }, (_, i) => `word${i}`).join(' ');

let system: TestSystem;
let billing: FastifyInstance;
let uploadDir: string;
test.before(async () => {
  system = await startSystem({ openai: { reply: () => REPLY, chunkDelayMs: 25 } });
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-authz-'));
  billing = billingAppOf(system, { documents: { uploadDir, maxUploadBytes: 10_000 } });
  await billing.ready();
});
test.after(async () => {
  await billing?.close();
  await system?.close();
  if (uploadDir) rmSync(uploadDir, { recursive: true, force: true });
});

const code = (answer: { ok: boolean; error?: { code: string } }) => (answer.ok ? 'ok' : answer.error!.code);

/** Every event a client receives, in order. */
function recordAll(client: TestClient): Array<[string, unknown]> {
  const seen: Array<[string, unknown]> = [];
  client.onAny((event: string, payload: unknown) => seen.push([event, payload]));
  return seen;
}

/** The owner's live state of a session (Redis) and its stored messages (Postgres). */
async function snapshot(userId: string, sessionId: string) {
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  const live = await system.redis.hgetall(keys.session(sessionId));
  const log = await system.redis.lrange(keys.messageLog(sessionId), 0, -1);
  return { status: live.status, version: live.version, messageCount: live.messageCount, log };
}

/** Every client event about `sessionId`, as someone who is not its user. */
async function everyEvent(client: TestClient, sessionId: string): Promise<Record<string, string>> {
  return {
    'session:get': code(await request(client, 'session:get', { sessionId })),
    'session:history': code(await request(client, 'session:history', { sessionId })),
    'session:token': code(await request(client, 'session:token', { sessionId })),
    'session:pause': code(await request(client, 'session:pause', { sessionId })),
    'session:resume': code(await request(client, 'session:resume', { sessionId })),
    'message:send': code(await request(client, 'message:send', { sessionId, clientMessageId: randomUUID(), content: 'not yours' })),
    'session:rate': code(await request(client, 'session:rate', { sessionId, rating: 1, feedback: 'sabotage' })),
    'session:end': code(await request(client, 'session:end', { sessionId })),
  };
}

const allForbidden = (events: Record<string, string>) => Object.fromEntries(Object.keys(events).map((event) => [event, 'forbidden']));

test('every client event on another user\'s live chat and voice session is forbidden and changes nothing', async () => {
  const owner = await createUser(system, '50.0000');
  const intruder = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const ownerClient = await system.connect(owner);
  const intruderClient = await system.connect(intruder);
  const chat = await request(ownerClient, 'session:start', { cloneId, type: 'chat' });
  const voice = await request(ownerClient, 'session:start', { cloneId, type: 'voice' });
  if (!chat.ok || !voice.ok) throw new Error(JSON.stringify([chat, voice]));
  const completed = nextEvent(ownerClient, 'message:completed', (c) => c.sessionId === chat.session.id, 10_000);
  assert.ok((await request(ownerClient, 'message:send', { sessionId: chat.session.id, clientMessageId: 'm1', content: 'hello' })).ok);
  await completed;
  // the rows exist, so the gateway can tell "someone else's" from "no such session"
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', voice.session.id).executeTakeFirst(), 5000, 'rows');

  for (const session of [chat.session, voice.session]) {
    const before = await snapshot(owner, session.id);
    const answers = await everyEvent(intruderClient, session.id);
    assert.equal(answers, allForbidden(answers), `${session.type}: ${JSON.stringify(answers)}`);
    assert.equal(await snapshot(owner, session.id), before, `${session.type}: the owner's session is untouched`);
  }
  // nothing of the intruder's was created either
  assert.is(await system.redis.exists(userKeys(system.config.REDIS_PREFIX, intruder).open), 0);
  const rows = await system.database.db.selectFrom('sessions').select('id').where('user_id', '=', intruder).execute();
  assert.is(rows.length, 0);
  for (const session of [chat.session, voice.session]) assert.ok((await request(ownerClient, 'session:end', { sessionId: session.id })).ok);
  ownerClient.disconnect();
  intruderClient.disconnect();
});

/** Two connected users; the owner has a chat running. */
async function ownerChatAndIntruder() {
  const owner = await createUser(system, '50.0000');
  const intruder = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const ownerClient = await system.connect(owner);
  const intruderClient = await system.connect(intruder);
  const started = await request(ownerClient, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  return { owner, intruder, ownerClient, intruderClient, sessionId: started.session.id };
}

test('another user\'s session:end does not cut its owner\'s streaming reply short', async () => {
  const { ownerClient, intruderClient, sessionId } = await ownerChatAndIntruder();
  const firstDelta = nextEvent(ownerClient, 'message:delta', (d) => d.sessionId === sessionId, 5000);
  const completed = nextEvent(ownerClient, 'message:completed', (c) => c.sessionId === sessionId && c.message.senderType === 'ai', 10_000);
  assert.ok((await request(ownerClient, 'message:send', { sessionId, clientMessageId: 'q', content: 'talk to me' })).ok);
  await firstDelta;
  assert.is(code(await request(intruderClient, 'session:end', { sessionId })), 'forbidden');
  const { message } = await completed;
  assert.is(message.content, REPLY, 'the whole reply, not a cut one');
  assert.is(code(await request(ownerClient, 'session:end', { sessionId })), 'ok');
  ownerClient.disconnect();
  intruderClient.disconnect();
});

test('a session\'s events reach only its user\'s sockets; sockets sit in their own user\'s room only', async () => {
  const owner = await createUser(system, '50.0000');
  const other = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const ownerClient = await system.connect(owner);
  const ownerSecond = await system.connect(owner);
  const otherClient = await system.connect(other);
  const ownerSeen = recordAll(ownerSecond);
  const otherSeen = recordAll(otherClient);

  const started = await request(ownerClient, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const completed = nextEvent(ownerSecond, 'message:completed', (c) => c.sessionId === sessionId && c.message.senderType === 'ai', 10_000);
  assert.ok((await request(ownerClient, 'message:send', { sessionId, clientMessageId: 'x', content: 'hi' })).ok);
  await completed;
  await nextEvent(ownerSecond, 'meter:tick', (t) => t.sessionId === sessionId, 5000);
  assert.ok((await request(ownerClient, 'session:pause', { sessionId })).ok);
  const ended = nextEvent(ownerSecond, 'session:ended', (e) => e.sessionId === sessionId, 5000);
  assert.ok((await request(ownerClient, 'session:end', { sessionId })).ok);
  await ended;

  // the owner's other socket heard all of it (the control); the other user nothing
  const kinds = new Set(ownerSeen.map(([event]) => event));
  for (const event of ['session:updated', 'message:delta', 'message:completed', 'meter:tick', 'session:ended']) assert.ok(kinds.has(event), event);
  assert.equal(otherSeen, []);

  const rooms = (client: TestClient) => [...(system.gateway.io.of('/').sockets.get(client.id!)?.rooms ?? [])].sort();
  assert.equal(rooms(otherClient), [otherClient.id!, `user:${other}`].sort());
  assert.equal(rooms(ownerClient), [ownerClient.id!, `user:${owner}`].sort());
  ownerClient.disconnect();
  ownerSecond.disconnect();
  otherClient.disconnect();
});

test('a settled session stays forbidden to anyone but its user (read from Postgres), and only its user may rate it', async () => {
  const { owner, ownerClient, intruderClient, sessionId } = await ownerChatAndIntruder();
  assert.ok((await request(ownerClient, 'session:end', { sessionId })).ok);
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');
  // the live state gone too: everything is answered from Postgres
  const keys = userKeys(system.config.REDIS_PREFIX, owner);
  await system.redis.del(keys.session(sessionId), keys.messageLog(sessionId));

  const answers = await everyEvent(intruderClient, sessionId);
  assert.equal(answers, allForbidden(answers), JSON.stringify(answers));
  const row = await system.database.db.selectFrom('sessions').select(['user_rating', 'user_feedback', 'status']).where('id', '=', sessionId).executeTakeFirstOrThrow();
  assert.equal(row, { user_rating: null, user_feedback: null, status: 'ended' });
  assert.is(code(await request(ownerClient, 'session:rate', { sessionId, rating: 5 })), 'ok', 'its own user may');
  ownerClient.disconnect();
  intruderClient.disconnect();
});

/** A multipart upload body with one text file. */
function upload(title: string, content: string) {
  const boundary = `----authz${randomUUID()}`;
  const payload = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n${title}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n${content}\r\n--${boundary}--\r\n`,
  );
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

test('a creator cannot list or add to another creator\'s documents; neither can a user or an admin', async () => {
  const { cloneId, creatorId } = await createClone(system, '1.0000');
  const { creatorId: otherCreator } = await createClone(system, '1.0000');
  const user = await createUser(system);
  const admin = await createUser(system);
  await system.database.db.updateTable('user_profiles').set({ role: 'admin' }).where('id', '=', admin).execute();
  const url = `/api/clones/${cloneId}/documents`;
  const as = async (userId: string) => ({ authorization: `Bearer ${await system.token(userId)}` });

  const file = upload('Private notes', 'the secret recipe');
  const own = await billing.inject({ method: 'POST', url, headers: { ...(await as(creatorId)), ...file.headers }, payload: file.payload });
  assert.is(own.statusCode, 202, own.body);
  const listedByOwner = await billing.inject({ method: 'GET', url, headers: await as(creatorId) });
  assert.equal(listedByOwner.json().documents.map((d: { title: string }) => d.title), ['Private notes']);

  for (const [who, userId] of [['another creator', otherCreator], ['a user', user], ['an admin', admin]] as const) {
    const listed = await billing.inject({ method: 'GET', url, headers: await as(userId) });
    assert.is(listed.statusCode, 403, `${who} GET`);
    assert.is(listed.json().error.code, 'forbidden');
    assert.not.match(listed.body, /Private notes|secret recipe/);
    const body = upload('Planted', 'planted text');
    const added = await billing.inject({ method: 'POST', url, headers: { ...(await as(userId)), ...body.headers }, payload: body.payload });
    assert.is(added.statusCode, 403, `${who} POST`);
  }
  assert.is((await billing.inject({ method: 'GET', url })).statusCode, 401);
  const titles = await system.database.db.selectFrom('documents').select('title').where('clone_id', '=', cloneId).execute();
  assert.equal(titles, [{ title: 'Private notes' }], 'nothing planted');
});

test('a user or creator gets 403 from every ledger route, even about their own settled session, and nothing is written', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId, creatorId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');
  const credits = async () => (await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow()).credits_remaining;
  const creditsBefore = await credits();

  const routes: Array<[string, string, object?]> = [
    ['GET', '/api/ledger/sessions'],
    ['GET', `/api/ledger/sessions?userId=${userId}`],
    ['GET', `/api/ledger/sessions/${sessionId}`],
    ['GET', '/api/ledger/export.csv'],
    ['GET', '/api/ledger/reconciliation'],
    ['GET', `/api/analytics/creators?creatorId=${creatorId}`],
    ['GET', `/api/analytics/users?userId=${userId}`],
    ['POST', '/api/ledger/adjustments', { idempotencyKey: randomUUID(), sessionId, amount: '0.0001', reason: 'refund myself' }],
  ];
  for (const who of [userId, creatorId]) {
    const authorization = `Bearer ${await system.token(who)}`;
    for (const [method, url, payload] of routes) {
      const response = await billing.inject({ method: method as 'GET' | 'POST', url, headers: { authorization }, ...(payload ? { payload } : {}) });
      assert.is(response.statusCode, 403, `${method} ${url}`);
      assert.is(response.json().error.code, 'forbidden');
      assert.not.match(response.body, new RegExp(sessionId));
    }
  }
  const adjustments = await system.database.db.selectFrom('ledger_adjustments').select('id').where('session_id', '=', sessionId).execute();
  assert.is(adjustments.length, 0);
  assert.is(await credits(), creditsBefore);
  client.disconnect();
});

test.run();
