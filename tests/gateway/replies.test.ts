import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { parseMoney } from '#shared/money/money.ts';
import { userKeys } from '#shared/live-state/keys.ts';
import { replyCost } from '#shared/money/pricing.ts';
import { Gateway } from '#gateway/gateway.ts';
import { createReplyGenerator } from '#gateway/replies/reply-generator.ts';
import { countPromptTokens, countTokens } from '#gateway/replies/count-tokens.ts';
import { io } from 'socket.io-client';
import { createClone, createUser, nextEvent, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
let system: TestSystem;
test.before(async () => {
  system = await startSystem({
    env: { AI_PRICE_PER_1K_TOKENS: '1.0000', MESSAGE_RATE_PER_MIN: '5', EVENT_BURST: '100' },
    openai: { reply: () => words, chunkDelayMs: 40 },
  });
});
test.after(async () => {
  await system?.close();
});

test('a reply cut short by a pause is stored and billed for the tokens actually produced', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const deltas: string[] = [];
  client.on('message:delta', (d) => deltas.push(d.delta));
  const completed = nextEvent(client, 'message:completed', (c) => c.sessionId === sessionId, 5000);
  await request(client, 'message:send', { sessionId, clientMessageId: 'long', content: 'tell me everything' });
  await waitFor(() => deltas.length >= 5, 5000, 'some of the reply');
  await request(client, 'session:pause', { sessionId });
  const { message } = await completed;
  assert.ok(message.content.length > 0 && message.content.length < words.length, 'a partial reply');
  assert.ok(words.startsWith(message.content.trim()));
  const body = system.openai.requests.at(-1)!.body;
  const expectedTokens = countPromptTokens(body.messages as Array<{ role: string; content: string }>) + countTokens(message.content);
  assert.is(message.tokensUsed, expectedTokens);
  assert.is(parseMoney(message.costIncrement), replyCost(expectedTokens, parseMoney('1.0000')));
  assert.is(await system.openai.settled(system.openai.requests.length - 1), 'client_closed', 'the provider stream was cut at once');
  await request(client, 'session:end', { sessionId });
  const row = await waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst());
  const stored = await system.database.db.selectFrom('messages').selectAll().where('session_id', '=', sessionId).where('sender_type', '=', 'ai').executeTakeFirstOrThrow();
  assert.is(stored.content, message.content);
  assert.is(stored.tokens_used, expectedTokens);
  assert.ok(parseMoney(row.total_cost) >= parseMoney(message.costIncrement), 'the reply is in the session total');
  client.disconnect();
});

test('ending a session while its reply streams bills the reply into the settled total', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '0.0000'); // time is free: the total is the reply alone
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const firstDelta = nextEvent(client, 'message:delta', (d) => d.sessionId === sessionId, 5000);
  const completed = nextEvent(client, 'message:completed', (c) => c.sessionId === sessionId, 5000);
  await request(client, 'message:send', { sessionId, clientMessageId: 'q', content: 'go on' });
  await firstDelta;
  const ended = await request(client, 'session:end', { sessionId });
  if (!ended.ok) throw new Error(JSON.stringify(ended));
  const { message } = await completed;
  assert.ok(parseMoney(message.costIncrement) > 0n);
  assert.is(ended.session.cost, message.costIncrement, 'the end waited for the cut reply and billed it');
  client.disconnect();
});

test('the per-user message rate holds across two gateways', async () => {
  const second = new Gateway({
    config: system.config,
    db: system.database.db,
    redis: system.redis,
    queue: system.queue,
    replies: createReplyGenerator(system.config),
    logger: pino({ level: 'silent' }),
  });
  const port = await second.start();
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '0.0100');
  const onA = await system.connect(userId);
  const onB: TestClient = io(`http://127.0.0.1:${port}`, { auth: { token: await system.token(userId) }, transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    onB.once('connect', () => resolve());
    onB.once('connect_error', reject);
  });
  try {
    const started = await request(onA, 'session:start', { cloneId, type: 'chat' });
    if (!started.ok) throw new Error(JSON.stringify(started));
    const sessionId = started.session.id;
    const firstMinute = Math.floor(Date.now() / 60_000);
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const answer = await request(i % 2 ? onB : onA, 'message:send', { sessionId, clientMessageId: `m${i}`, content: `message ${i}` });
      codes.push(answer.ok ? 'ok' : answer.error.code);
    }
    const accepted = codes.filter((c) => c === 'ok').length;
    assert.ok(codes.includes('rate_limited'), codes.join(','));
    if (Math.floor(Date.now() / 60_000) === firstMinute) {
      assert.is(accepted, 5, codes.join(','));
      // the counter sits where keys.ts says (message-add.lua builds it from the user's key base)
      const counted = await system.redis.get(userKeys(system.config.REDIS_PREFIX, userId).messageRate(firstMinute));
      assert.is(counted, '5');
    } else assert.ok(accepted <= 10, 'at most one limit per minute window');
    // a repeat of an accepted message is still answered (and not counted)
    const repeat = await request(onB, 'message:send', { sessionId, clientMessageId: 'm0', content: 'message 0' });
    assert.ok(repeat.ok);
  } finally {
    onA.disconnect();
    onB.disconnect();
    await second.close();
  }
});

test.run();
