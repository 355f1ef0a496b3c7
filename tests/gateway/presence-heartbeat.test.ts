import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WireSession } from '#shared/contract/socket-events.ts';
import { createClone, createUser, request, startSystem, type TestSystem } from '../support/system.ts';

// Presence must not depend on the meter tick round: here ticks come once a minute (as if a round were that slow
// under load) while presence times out after 400 ms. A connected user's chat stays active on the heartbeat alone;
// when the socket goes, the chat pauses.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({
    env: { METER_TICK_MS: '60000', PRESENCE_TIMEOUT_MS: '400', IDLE_PAUSE_MS: '600000', DUE_POLL_MS: '50' },
  });
});
test.after(async () => {
  await system?.close();
});

test('a connected user stays present between slow meter ticks; a gone one pauses', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const socket = await system.connect(userId);
  const updates: WireSession[] = [];
  socket.on('session:updated', (s) => updates.push(s));
  const started = await request(socket, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  await new Promise((resolve) => setTimeout(resolve, 2000)); // five presence timeouts, no tick, no request
  assert.equal(updates.filter((s) => s.status !== 'active'), [], 'no pause while the socket is connected');

  // an observer on another socket sees the pause once this one has gone away
  const observer = await system.connect(userId);
  socket.disconnect();
  await new Promise((resolve) => setTimeout(resolve, 300));
  observer.disconnect();
  const other = await system.connect(userId);
  const got = await request(other, 'session:get', { sessionId });
  assert.ok(got.ok);
  assert.is(got.ok && got.session.status, 'paused');
});

test.run();
