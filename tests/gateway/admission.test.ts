import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { io } from 'socket.io-client';
import type { Gateway } from '#gateway/gateway.ts';
import { TollgateClient } from '#shared/client/tollgate-client.ts';
import { GatedReplies, startGatedGateway } from '../support/gated-replies.ts';
import { createClone, createUser, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

// A gateway past what it serves: its replies wait at a gate (one generating at once) and more than one waiting is its
// limit. Admission control must then refuse new users and new sessions with `overloaded` and a retry hint, report
// itself not ready, and keep answering the users it has; once the replies drain, it takes work again.
let system: TestSystem;
let gateway: Gateway;
let url: string;
const replies = new GatedReplies();
test.before(async () => {
  system = await startSystem({ env: { MAX_OPEN_SESSIONS: '5' } });
  ({ gateway, url } = await startGatedGateway(system, replies, {
    maxRepliesInFlight: 1,
    config: { ADMISSION_REPLIES_WAITING: 1, ADMISSION_SAMPLE_MS: 20, ADMISSION_CALM_MS: 200, ADMISSION_RETRY_MS: 1000 },
  }));
});
test.after(async () => {
  for (let i = 0; i < 10; i++) replies.open(); // whatever a failed test left at the gate
  await gateway?.close();
  await system?.close();
});

/** Connects the user; resolves with the client, or with the refusal's message and data. */
async function connect(userId: string): Promise<TestClient | { refused: string; data: unknown }> {
  const client: TestClient = io(url, { auth: { token: await system.token(userId) }, transports: ['websocket'], forceNew: true, reconnection: false });
  return new Promise((resolve) => {
    client.once('connect', () => resolve(client));
    client.once('connect_error', (error: Error & { data?: unknown }) => resolve({ refused: error.message, data: error.data }));
  });
}

async function connected(userId: string): Promise<TestClient> {
  const client = await connect(userId);
  if ('refused' in client) throw new Error(`refused: ${client.refused}`);
  return client;
}

const readiness = async () => {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; reasons: string[] } };
};

const metric = async (name: string, labels: Record<string, string> = {}) => {
  const values = (await gateway.registry.getSingleMetric(name)!.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
};

/**
 * Three chats with a message each: one reply generating at the gate, two waiting for a slot (over the limit of one);
 * resolves with the sessions once the gateway reports itself not ready.
 */
async function overload(client: TestClient, cloneId: string, tag: string): Promise<string[]> {
  const sessionIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const started = await request(client, 'session:start', { cloneId, type: 'chat' });
    assert.ok(started.ok, JSON.stringify(started));
    sessionIds.push(started.session.id);
  }
  for (const [i, sessionId] of sessionIds.entries()) {
    const sent = await request(client, 'message:send', { sessionId, clientMessageId: `${tag}${i}`, content: `${tag}${i}` });
    assert.ok(sent.ok, JSON.stringify(sent));
  }
  await waitFor(async () => (await readiness()).status === 503, 5000, '/readyz 503');
  return sessionIds;
}

test('past its limit a gateway refuses new users and sessions with `overloaded`, stays with those it has, and takes work again once calm', async () => {
  assert.equal((await readiness()).status, 200);
  const { cloneId } = await createClone(system, '0.0100');
  const regular = await createUser(system, '50.0000');
  const newcomer = await createUser(system, '50.0000');
  const client = await connected(regular);
  const sessionIds = await overload(client, cloneId, 'q');
  assert.equal((await readiness()).body.reasons, ['repliesWaiting>1']);
  assert.is(await metric('gateway_overloaded'), 1);

  // a new user is refused at the handshake, with the code and a retry hint in the connect_error
  const refused = await connect(newcomer);
  assert.ok('refused' in refused, 'the newcomer was let in');
  assert.is(refused.refused, 'overloaded');
  const hint = (refused.data as { code: string; retryAfterMs: number });
  assert.is(hint.code, 'overloaded');
  assert.ok(hint.retryAfterMs >= 500 && hint.retryAfterMs <= 1500, `retry hint ${hint.retryAfterMs}`);
  // a user with an open session coming back (a second tab, a reconnect) is let in
  const secondTab = await connected(regular);
  // no new session, with a hint
  const start = await request(client, 'session:start', { cloneId, type: 'chat' });
  assert.is(start.ok, false);
  assert.is(!start.ok && start.error.code, 'overloaded');
  assert.ok(!start.ok && typeof start.error.retryAfterMs === 'number', JSON.stringify(start));
  // the user it has keeps being answered: a message to an open session is acknowledged
  const sent = await request(secondTab, 'message:send', { sessionId: sessionIds[0]!, clientMessageId: 'during', content: 'still here' });
  assert.ok(sent.ok, JSON.stringify(sent));
  assert.is(await metric('gateway_admission_refusals_total', { what: 'handshake' }), 1);
  assert.is(await metric('gateway_admission_refusals_total', { what: 'start' }), 1);

  // the replies drain: after ADMISSION_CALM_MS under every limit, new users and sessions are taken again
  for (let i = 0; i < 4; i++) {
    await waitFor(() => replies.started.length > i, 5000, `reply ${i + 1} at the gate`);
    replies.open();
  }
  await waitFor(async () => (await readiness()).status === 200, 5000, '/readyz 200 again');
  const newClient = await connected(newcomer);
  const later = await request(newClient, 'session:start', { cloneId, type: 'chat' });
  assert.ok(later.ok, JSON.stringify(later));
  for (const c of [client, secondTab, newClient]) c.disconnect();
});

test('the typed client waits out `overloaded`: a refused handshake is tried again after its hint until the gateway takes it', async () => {
  const { cloneId } = await createClone(system, '0.0100');
  const regular = await createUser(system, '50.0000');
  const client = await connected(regular);
  const before = replies.started.length;
  await overload(client, cloneId, 'r');

  const newcomer = await createUser(system, '50.0000');
  const typed = new TollgateClient({ busyRetries: 10 });
  const refusedBefore = await metric('gateway_admission_refusals_total', { what: 'handshake' });
  const connecting = typed.connect(url, () => system.token(newcomer));
  await waitFor(async () => (await metric('gateway_admission_refusals_total', { what: 'handshake' })) > refusedBefore, 5000, 'the handshake refused');
  for (let i = 0; i < 3; i++) {
    await waitFor(() => replies.started.length > before + i, 5000, `reply ${i + 1} at the gate`);
    replies.open();
  }
  await connecting; // connected once the gateway calmed, without the caller doing anything
  const session = await typed.startSession(cloneId);
  assert.is(session.status, 'active');
  typed.close();
  client.disconnect();
});

test.run();
