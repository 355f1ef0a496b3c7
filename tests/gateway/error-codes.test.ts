import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { createClone, createUser, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

let system: TestSystem;
let userId: string;
let client: TestClient;
let cloneId: string;

test.before(async () => {
  system = await startSystem({ env: { MIN_START_SECONDS: '60', EVENTS_PER_SECOND: '5', EVENT_BURST: '60', MAX_MESSAGE_CHARS: '50' } });
  userId = await createUser(system, '100.0000');
  cloneId = (await createClone(system, '1.0000')).cloneId;
  client = await system.connect(userId);
});
test.after(async () => {
  await system?.close();
});

const code = (answer: { ok: boolean; error?: { code: string } }) => (answer.ok ? 'ok' : answer.error!.code);

test('invalid_payload: wrong types, unknown fields, missing payload, oversized content', async () => {
  assert.is(code(await request(client, 'session:start', { cloneId: 'not-a-uuid', type: 'chat' } as never)), 'invalid_payload');
  assert.is(code(await request(client, 'session:start', { cloneId, type: 'fax' } as never)), 'invalid_payload');
  assert.is(code(await request(client, 'session:start', { cloneId, type: 'chat', extra: 1 } as never)), 'invalid_payload');
  assert.is(code(await request(client, 'session:pause', undefined as never)), 'invalid_payload');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  assert.ok(started.ok);
  const sessionId = started.ok ? started.session.id : '';
  assert.is(code(await request(client, 'message:send', { sessionId, clientMessageId: 'x', content: 'y'.repeat(51) })), 'invalid_payload');
  assert.is(code(await request(client, 'message:send', { sessionId, clientMessageId: 'x'.repeat(65), content: 'hi' })), 'invalid_payload');
  assert.is(code(await request(client, 'message:send', { sessionId, clientMessageId: 'x', content: '' })), 'invalid_payload');
  assert.is(code(await request(client, 'session:rate', { sessionId, rating: 6 })), 'invalid_payload');
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
});

test('an event without an ack callback is ignored without harm', async () => {
  (client as unknown as { emit(e: string, p: unknown): void }).emit('session:start', { nonsense: true });
  assert.is(code(await request(client, 'session:get', { sessionId: randomUUID() })), 'not_found');
});

test('not_found: unknown session and unknown clone', async () => {
  assert.is(code(await request(client, 'session:pause', { sessionId: randomUUID() })), 'not_found');
  assert.is(code(await request(client, 'session:start', { cloneId: randomUUID(), type: 'chat' })), 'not_found');
});

test('forbidden: another user\'s session', async () => {
  const otherUser = await createUser(system);
  const other = await system.connect(otherUser);
  const started = await request(other, 'session:start', { cloneId, type: 'chat' });
  const sessionId = started.ok ? started.session.id : '';
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', sessionId).executeTakeFirst());
  assert.is(code(await request(client, 'session:end', { sessionId })), 'forbidden');
  assert.is(code(await request(client, 'session:get', { sessionId })), 'forbidden');
  assert.is(code(await request(client, 'message:send', { sessionId, clientMessageId: 'a', content: 'b' })), 'forbidden');
  assert.is(code(await request(client, 'session:rate', { sessionId, rating: 1 })), 'forbidden');
  other.disconnect();
});

test('invalid_state: illegal transitions and acting on an ended session; pause and resume are idempotent', async () => {
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  const sessionId = started.ok ? started.session.id : '';
  assert.is(code(await request(client, 'session:rate', { sessionId, rating: 4 })), 'invalid_state');
  // a request whose outcome already holds is ok, as its retry would be
  assert.is(code(await request(client, 'session:resume', { sessionId })), 'ok');
  assert.is(code(await request(client, 'session:pause', { sessionId })), 'ok');
  assert.is(code(await request(client, 'session:pause', { sessionId })), 'ok');
  assert.is(code(await request(client, 'message:send', { sessionId, clientMessageId: 'p', content: 'paused?' })), 'invalid_state');
  assert.is(code(await request(client, 'session:end', { sessionId })), 'ok');
  assert.is(code(await request(client, 'session:end', { sessionId })), 'invalid_state');
  assert.is(code(await request(client, 'session:resume', { sessionId })), 'invalid_state');
  assert.is(code(await request(client, 'message:send', { sessionId, clientMessageId: 'e', content: 'ended?' })), 'invalid_state');
});

test('insufficient_credits: cannot pay for MIN_START_SECONDS', async () => {
  const poor = await createUser(system, '0.9999'); // one minute at 1.0000/min costs 1.0000
  const poorClient = await system.connect(poor);
  assert.is(code(await request(poorClient, 'session:start', { cloneId, type: 'chat' })), 'insufficient_credits');
  const enough = await createUser(system, '1.0000');
  const enoughClient = await system.connect(enough);
  assert.is(code(await request(enoughClient, 'session:start', { cloneId, type: 'chat' })), 'ok');
  poorClient.disconnect();
  enoughClient.disconnect();
});

test('clone_unavailable: unpublished or inactive clone', async () => {
  const hidden = await createClone(system, '1.0000', { published: false });
  const inactive = await createClone(system, '1.0000', { active: false });
  assert.is(code(await request(client, 'session:start', { cloneId: hidden.cloneId, type: 'chat' })), 'clone_unavailable');
  assert.is(code(await request(client, 'session:start', { cloneId: inactive.cloneId, type: 'voice' })), 'clone_unavailable');
});

test('session:rate once per ended session updates the clone average', async () => {
  const { cloneId: rated } = await createClone(system, '1.0000');
  const ratings: number[] = [];
  for (const rating of [5, 2]) {
    const started = await request(client, 'session:start', { cloneId: rated, type: 'chat' });
    const sessionId = started.ok ? started.session.id : '';
    await request(client, 'session:end', { sessionId });
    await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', sessionId).where('status', '=', 'ended').executeTakeFirst());
    assert.is(code(await request(client, 'session:rate', { sessionId, rating, feedback: 'thanks' })), 'ok');
    assert.is(code(await request(client, 'session:rate', { sessionId, rating: 1 })), 'invalid_state');
    const row = await system.database.db.selectFrom('sessions').select(['user_rating', 'user_feedback']).where('id', '=', sessionId).executeTakeFirstOrThrow();
    assert.is(row.user_rating, rating);
    assert.is(row.user_feedback, 'thanks');
    ratings.push(rating);
  }
  const clone = await system.database.db.selectFrom('clones').select(['average_rating', 'total_ratings']).where('id', '=', rated).executeTakeFirstOrThrow();
  assert.is(clone.total_ratings, 2);
  assert.is(clone.average_rating, '3.50');
});

test('rate_limited: a burst over the per-socket budget', async () => {
  const flooder = await system.connect(userId);
  const answers = await Promise.all(Array.from({ length: 80 }, () => request(flooder, 'session:get', { sessionId: randomUUID() })));
  const codes = answers.map(code);
  assert.ok(codes.includes('rate_limited'));
  assert.ok(codes.includes('not_found'));
  assert.ok(codes.filter((c) => c === 'not_found').length <= 62);
  flooder.disconnect();
});

test('internal: an unexpected failure is answered, not crashed on', async () => {
  const brokenUser = await createUser(system);
  const broken = await system.connect(brokenUser);
  // the clone's rate cannot be read as money: the service throws a plain error
  const { cloneId: weird } = await createClone(system, '1.0000');
  await system.redis.set(`${system.config.REDIS_PREFIX}:u:{${brokenUser}}:acct`, 'not a hash');
  const answer = await request(broken, 'session:start', { cloneId: weird, type: 'chat' });
  assert.is(code(answer), 'internal');
  assert.is(answer.ok ? '' : answer.error.message, 'internal error');
  // the process still answers
  assert.is(code(await request(broken, 'session:get', { sessionId: randomUUID() })), 'internal');
  await system.redis.del(`${system.config.REDIS_PREFIX}:u:{${brokenUser}}:acct`);
  assert.is(code(await request(broken, 'session:get', { sessionId: randomUUID() })), 'not_found');
  broken.disconnect();
});

test.run();
