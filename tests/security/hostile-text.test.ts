/**
 * Text a client may send that is hard for the gateway or impossible for Postgres. The costliest text to count
 * (4,000 characters that never merge into longer tokens) must not stall the event loop: another user's meter keeps
 * ticking and nobody's chat is paused for "disconnected". Text Postgres cannot store as sent (NUL, a lone surrogate)
 * is refused with `invalid_payload` in every text field of every event, never acknowledged and then lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WireSession } from '#shared/contract/socket-events.ts';
import { seedFrom, seededRandom, type SeededRandom } from '../../scripts/lib/seeded-random.ts';
import { connectedUserAndClone, nextEvent, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

const PRESENCE_TIMEOUT_MS = 2000;
const SEED = seedFrom('HOSTILE_SEED');

let system: TestSystem;
test.before(async () => {
  system = await startSystem({
    env: {
      PRESENCE_TIMEOUT_MS: String(PRESENCE_TIMEOUT_MS),
      METER_TICK_MS: '100',
      MESSAGE_RATE_PER_MIN: '1000',
      IDLE_PAUSE_MS: '600000',
    },
    // the clone answers with the user's text backwards (another text to count, not a remembered one), reporting no
    // usage: the gateway counts prompt and reply itself, as it must for a provider that does not report
    openai: {
      reply: (body) => [...String((body.messages as { content: string }[]).at(-1)?.content ?? '')].reverse().join(''),
      usage: null,
    },
  });
});
test.after(async () => {
  await system?.close();
});

/** `length` code points drawn from [from, to], seeded. */
function randomRun(random: SeededRandom, from: number, to: number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCodePoint(from + random.between(0, to - from));
  return text;
}

test('the costliest text to count stalls nobody: another user keeps ticking and no chat pauses', async () => {
  const random = seededRandom(SEED);
  const max = system.config.MAX_MESSAGE_CHARS;
  const victim = await connectedUserAndClone(system, '100.0000', '1.0000');
  const attacker = await connectedUserAndClone(system, '100.0000', '1.0000');
  const statuses: string[] = [];
  const onUpdate = (session: WireSession) => statuses.push(`${session.userId === victim.userId ? 'victim' : 'attacker'}:${session.status}`);
  victim.client.on('session:updated', onUpdate);
  attacker.client.on('session:updated', onUpdate);
  const victimStart = await request(victim.client, 'session:start', { cloneId: victim.cloneId, type: 'chat' });
  const attackerStart = await request(attacker.client, 'session:start', { cloneId: attacker.cloneId, type: 'chat' });
  if (!victimStart.ok || !attackerStart.ok) throw new Error(JSON.stringify([victimStart, attackerStart]));
  const sessionId = attackerStart.session.id;

  let lastTick = Date.now();
  let longestGap = 0;
  victim.client.on('meter:tick', () => {
    const now = Date.now();
    longestGap = Math.max(longestGap, now - lastTick);
    lastTick = now;
  });

  const runs = {
    'CJK U+4E00–U+8DFF': () => randomRun(random, 0x4e00, 0x8dff, max),
    emoji: () => randomRun(random, 0x1f300, 0x1f6ff, max / 2), // two UTF-16 units each
    'a–z': () => randomRun(random, 0x61, 0x7a, max),
    'Hangul syllables': () => randomRun(random, 0xac00, 0xd7a3, max),
  };
  for (const [name, make] of Object.entries(runs)) {
    const content = make();
    const completed = nextEvent(attacker.client, 'message:completed', (c) => c.message.senderType === 'ai', 30_000);
    completed.catch(() => undefined); // awaited below unless the send already failed the test
    const sent = await request(attacker.client, 'message:send', { sessionId, clientMessageId: name, content }, 30_000);
    assert.ok(sent.ok, `${name}: ${JSON.stringify(sent).slice(0, 200)}`);
    const reply = await completed;
    assert.ok(reply.message.tokensUsed > 0, `${name}: the reply's tokens were counted`);
  }
  console.log(`  hostile text (seed ${SEED}): longest gap between the other user's ticks ${longestGap} ms`);
  assert.equal(statuses.filter((s) => !s.endsWith(':active')), [], 'nobody was paused while connected');
  assert.ok(longestGap < PRESENCE_TIMEOUT_MS, `the other user's meter ticked on (longest gap ${longestGap} ms)`);
});

/** Every way a text field could hold what Postgres cannot store as sent. */
const UNSTORABLE = ['hello\u0000world', '\u0000', 'lone \ud800 surrogate', 'trailing \udc00'];

test('text Postgres cannot store is refused in every text field of every event, and nothing is stored', async () => {
  const { cloneId, client } = await connectedUserAndClone(system, '100.0000', '1.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  for (const bad of UNSTORABLE) {
    for (const payload of [
      { sessionId, clientMessageId: 'm-1', content: bad },
      { sessionId, clientMessageId: `id ${bad}`, content: 'fine' },
    ]) {
      const answer = await request(client, 'message:send', payload);
      assert.equal(answer.ok ? 'ok' : answer.error.code, 'invalid_payload', `message:send ${JSON.stringify(payload)}`);
    }
  }
  const ended = await request(client, 'session:end', { sessionId });
  assert.ok(ended.ok);
  for (const bad of UNSTORABLE) {
    const answer = await request(client, 'session:rate', { sessionId, rating: 4, feedback: bad });
    assert.equal(answer.ok ? 'ok' : answer.error.code, 'invalid_payload', `session:rate feedback ${JSON.stringify(bad)}`);
  }
  // the same session takes storable text: the refusals were about the text, not the session
  const rated = await request(client, 'session:rate', { sessionId, rating: 4, feedback: 'fine – 很好 👍' });
  assert.ok(rated.ok, JSON.stringify(rated));
  const db = system.database.db;
  await waitFor(() => db.selectFrom('sessions').select('id').where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 15_000, 'settlement');
  const messages = await db.selectFrom('messages').select('id').where('session_id', '=', sessionId).execute();
  assert.is(messages.length, 0, 'no message was stored');
  const failed = await system.queue.getJobCounts('failed');
  assert.is(failed.failed ?? 0, 0, 'no billing job failed');
});

test('a model reply holding NUL or a lone surrogate is stored with U+FFFD in its place, as the user was sent it', async () => {
  const { cloneId, client } = await connectedUserAndClone(system, '100.0000', '1.0000');
  system.openai.setReply(() => 'before\u0000after \ud800 end');
  try {
    const started = await request(client, 'session:start', { cloneId, type: 'chat' });
    if (!started.ok) throw new Error(JSON.stringify(started));
    const sessionId = started.session.id;
    const completed = nextEvent(client, 'message:completed', (c) => c.message.senderType === 'ai', 10_000);
    const sent = await request(client, 'message:send', { sessionId, clientMessageId: 'q', content: 'say something odd' });
    assert.ok(sent.ok);
    const reply = await completed;
    assert.is(reply.message.content, 'before\ufffdafter \ufffd end');
    const db = system.database.db;
    const stored = await waitFor(
      () => db.selectFrom('messages').select('content').where('id', '=', reply.message.id).executeTakeFirst(),
      15_000,
      'the reply stored',
    );
    assert.is(stored.content, reply.message.content);
  } finally {
    system.openai.setReply((body) => [...String((body.messages as { content: string }[]).at(-1)?.content ?? '')].reverse().join(''));
  }
});

test.run();
