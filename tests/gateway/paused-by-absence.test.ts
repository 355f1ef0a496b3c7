import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectedUserAndClone, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// A chat paused because no gateway saw the user (their connection dropped, their gateway died) is no pause the user
// asked for: their next message resumes it, and the time they were away stays uncharged. A pause they asked for, or
// an end, is answered `invalid_state` with the session's status and why, so a client can tell the user what happened;
// pausing a chat paused for any other reason makes the pause the user's.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { IDLE_PAUSE_MS: '600000' } });
});
test.after(async () => {
  await system?.close();
});

test('a message through a gateway resumes a chat paused `disconnected`; the time away is not charged', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '60.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  client.disconnect(); // the last socket gone: the chat pauses at once
  await waitFor(async () => (await system.store.peek(userId, sessionId))?.status === 'paused', 5000, 'paused on leaving');
  const paused = (await system.store.peek(userId, sessionId))!;
  assert.is(paused.pausedBy, 'disconnected');
  await new Promise((resolve) => setTimeout(resolve, 1500)); // away for 1.5 s

  const back = await system.connect(userId);
  const got = await request(back, 'session:get', { sessionId });
  assert.is(got.ok && got.session.status, 'paused');
  assert.is(got.ok && got.session.reason, 'disconnected', 'the wire session says why it is paused');
  const sent = await request(back, 'message:send', { sessionId, clientMessageId: 'back', content: 'I am back' });
  assert.ok(sent.ok, JSON.stringify(sent));
  const live = (await system.store.peek(userId, sessionId))!;
  assert.is(live.status, 'active');
  // active time: before the pause, plus the little since the message; not the 1.5 s away
  assert.ok(live.activeMs === paused.activeMs, `active ms kept at the pause: ${live.activeMs} vs ${paused.activeMs}`);
  assert.ok(live.resumedAt >= paused.pausedAt! + 1500, 'resumed when the message came, not when the user left');
  back.disconnect();
});

test('pausing a chat paused `disconnected` is ok and makes the pause the user\'s: a message no longer resumes it', async () => {
  const { userId, cloneId, client } = await connectedUserAndClone(system, '50.0000', '60.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  client.disconnect();
  await waitFor(async () => (await system.store.peek(userId, sessionId))?.status === 'paused', 5000, 'paused on leaving');
  const back = await system.connect(userId);
  const paused = await request(back, 'session:pause', { sessionId });
  assert.ok(paused.ok, JSON.stringify(paused));
  assert.equal(paused.ok && [paused.session.status, paused.session.reason], ['paused', 'user']);
  const refused = await request(back, 'message:send', { sessionId, clientMessageId: 'after', content: 'still paused?' });
  assert.equal(!refused.ok && [refused.error.code, refused.error.status, refused.error.reason], ['invalid_state', 'paused', 'user']);
  assert.ok((await request(back, 'session:resume', { sessionId })).ok);
  back.disconnect();
});

test('a chat the user paused, or that ended, is not resumed by a message: invalid_state with the status and why', async () => {
  const { cloneId, client } = await connectedUserAndClone(system, '50.0000', '1.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  assert.ok((await request(client, 'session:pause', { sessionId })).ok);
  const refused = await request(client, 'message:send', { sessionId, clientMessageId: 'a', content: 'hello?' });
  assert.equal(!refused.ok && { code: refused.error.code, status: refused.error.status, reason: refused.error.reason }, { code: 'invalid_state', status: 'paused', reason: 'user' });
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const ended = await request(client, 'session:pause', { sessionId });
  assert.equal(!ended.ok && { code: ended.error.code, status: ended.error.status, reason: ended.error.reason }, { code: 'invalid_state', status: 'ended', reason: 'user' });
  client.disconnect();
});

test.run();
