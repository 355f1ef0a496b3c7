/**
 * The typed client library (shared/src/client) against a whole in-process Tollgate: requests and their errors,
 * event subscriptions, a message retried with the same clientMessageId after a lost ack, and the resync after a
 * reconnect whose missed events could not be replayed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WireMessage } from '#shared/contract/socket-events.ts';
import { TollgateClient, type ConnectionState, type SessionResync } from '#shared/client/tollgate-client.ts';
import { TollgateRequestError } from '#shared/client/tollgate-request-error.ts';
import { deleteKeys } from '../support/processes.ts';
import { createClone, createUser, startSystem, waitFor, type TestSystem } from '../support/system.ts';

const REPLY = 'Short answer, streamed.';

let system: TestSystem;
const clients: TollgateClient[] = [];

test.before(async () => {
  system = await startSystem({ openai: { reply: () => REPLY, chunkDelayMs: 5 } });
});
test.after(async () => {
  for (const client of clients) client.close();
  await system?.close();
});

function newClient(options: ConstructorParameters<typeof TollgateClient>[0] = {}): TollgateClient {
  const client = new TollgateClient(options);
  clients.push(client);
  return client;
}

/** Resolves with the first payload a subscription delivers that `accept`s, within 5 s. */
function next<T>(subscribe: (listener: (payload: T) => void) => () => void, accept: (payload: T) => boolean = () => true): Promise<T> {
  const promise = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no such event within 5000 ms'));
    }, 5000);
    const off = subscribe((payload) => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
  // awaited later by the test; a test that fails before then must not crash the run with an unhandled rejection
  promise.catch(() => undefined);
  return promise;
}

async function rejection(promise: Promise<unknown>): Promise<TollgateRequestError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, TollgateRequestError);
    return error as TollgateRequestError;
  }
  throw new Error('expected a rejection');
}

test('a refused token rejects connect() with unauthorized', async () => {
  const client = newClient();
  const error = await rejection(client.connect(system.url, 'not-a-token'));
  assert.is(error.code, 'unauthorized');
  assert.is(error.event, 'connect');
  assert.is(client.state, 'disconnected');
});

test('a session runs through the typed client: start, streamed reply, pause, resume, end, history, rate', async () => {
  const userId = await createUser(system, '20.0000');
  const { cloneId } = await createClone(system, '3.0000');
  const client = newClient();
  const states: ConnectionState[] = [];
  client.on('connection', (state) => states.push(state));
  // a token function is asked at connect
  await client.connect(system.url, () => system.token(userId));
  assert.equal(states, ['connecting', 'connected']);

  const session = await client.startSession(cloneId);
  assert.is(session.status, 'active');
  assert.is(session.ratePerMinute, '3.0000');
  await next<{ sessionId: string }>((l) => client.on('meter:tick', l), (t) => t.sessionId === session.id);

  const deltas: string[] = [];
  const offDelta = client.on('message:delta', ({ delta }) => deltas.push(delta));
  const completed = next<{ message: WireMessage }>((l) => client.on('message:completed', l));
  const sent = await client.send(session.id, 'Hello?');
  assert.is(sent.senderType, 'user');
  assert.is(sent.content, 'Hello?');
  const reply = (await completed).message;
  offDelta();
  assert.is(reply.content, REPLY);
  assert.is(deltas.join(''), REPLY);

  assert.is((await client.pause(session.id)).status, 'paused');
  assert.is((await client.pause(session.id)).status, 'paused', 'pausing a paused session is ok (a retry changes nothing)');
  const wrong = await rejection(client.send(session.id, 'Are you there?'));
  assert.is(wrong.code, 'invalid_state');
  assert.is(wrong.event, 'message:send');
  assert.is((await client.resume(session.id)).status, 'active');

  const ended = next<{ reason: string }>((l) => client.on('session:ended', l));
  const last = await client.end(session.id);
  assert.is(last.status, 'ended');
  assert.is((await ended).reason, 'user');
  assert.is((await client.get(session.id)).cost, last.cost, 'the ended cost is final');

  assert.equal((await client.history(session.id)).map((m) => m.id), [sent.id, reply.id]);
  assert.equal((await client.history(session.id, sent.id)).map((m) => m.id), [reply.id]);

  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', session.id).executeTakeFirst(), 10_000, 'the session row');
  await client.rate(session.id, 5, 'Great');
  assert.is((await rejection(client.rate(session.id, 4))).code, 'invalid_state', 'rated once');
  const row = await system.database.db.selectFrom('sessions').select('user_rating').where('id', '=', session.id).executeTakeFirstOrThrow();
  assert.is(row.user_rating, 5);
});

test('a call starts through the typed client with its room to join, and a fresh room token for a rejoin', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = newClient();
  await client.connect(system.url, () => system.token(userId));
  const { session, livekit } = await client.startCall(cloneId, 'voice');
  assert.is(session.type, 'voice');
  assert.is(session.status, 'paused', 'waiting for the user and the agent in the room');
  assert.is(livekit.room, `session-${session.id}`);
  assert.ok(livekit.token.split('.').length === 3 && livekit.url.startsWith('ws'));
  const again = await client.roomToken(session.id);
  assert.is(again.room, livekit.room);
  await client.end(session.id);
  const refused = await client.roomToken(session.id).catch((error: { code?: string }) => error.code);
  assert.is(refused, 'invalid_state');
});

test('a message whose ack is lost is sent again with the same clientMessageId and stored once', async () => {
  const userId = await createUser(system, '20.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const seen: string[] = [];
  let delayed = false;
  // the gateway answers the first message:send only after the client gave up on it
  const onConnection = (socket: { data: { userId: string }; use(fn: (packet: unknown[], next: () => void) => void): void }) => {
    if (socket.data.userId !== userId) return;
    socket.use((packet, nextMiddleware) => {
      if (packet[0] === 'message:send') {
        seen.push((packet[1] as { clientMessageId: string }).clientMessageId);
        if (!delayed) {
          delayed = true;
          const ack = packet[packet.length - 1] as (answer: unknown) => void;
          packet[packet.length - 1] = (answer: unknown) => setTimeout(() => ack(answer), 600);
        }
      }
      nextMiddleware();
    });
  };
  system.gateway.io.on('connection', onConnection as never);
  try {
    const client = newClient({ requestTimeoutMs: 250 });
    await client.connect(system.url, await system.token(userId));
    const session = await client.startSession(cloneId);
    const message = await client.send(session.id, 'Only once, please');
    assert.is(seen.length, 2, 'sent twice');
    assert.is(seen[0], seen[1], 'with the same clientMessageId');
    const history = await client.history(session.id);
    assert.equal(history.filter((m) => m.senderType === 'user').map((m) => m.id), [message.id], 'stored once');
    await client.end(session.id);
  } finally {
    system.gateway.io.off('connection', onConnection as never);
  }
});

test('after a reconnect that could not replay missed events, open sessions are fetched again with the messages missed', async () => {
  const userId = await createUser(system, '20.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = newClient({ socket: { reconnection: false } });
  await client.connect(system.url, () => system.token(userId));
  const session = await client.startSession(cloneId);
  const first = next<{ message: WireMessage }>((l) => client.on('message:completed', l));
  const mine = await client.send(session.id, 'First question');
  const firstReply = (await first).message;

  // another device of the user keeps the session going while this client is away
  const other = newClient();
  await other.connect(system.url, await system.token(userId));
  const otherReply = next<{ message: WireMessage }>((l) => other.on('message:completed', l));
  const dropped = next<ConnectionState>((l) => client.on('connection', l), (state) => state === 'disconnected');
  client.rawSocket!.io.engine.close();
  await dropped;
  const missed = await other.send(session.id, 'Second question, from elsewhere');
  const missedReply = (await otherReply).message;
  // the connection state kept for recovery is gone (as after the 2-minute window)
  await deleteKeys(system.redis, `${system.config.REDIS_PREFIX}:sio:session:*`);

  const resynced = next<SessionResync>((l) => client.on('resync', l));
  client.rawSocket!.connect();
  const { session: fresh, messages } = await resynced;
  assert.not.ok(client.rawSocket!.recovered);
  assert.is(fresh.id, session.id);
  assert.is(fresh.messageCount, 4);
  assert.equal(messages.map((m) => m.id), [missed.id, missedReply.id], 'only what came after the last message it had');
  assert.ok(![mine.id, firstReply.id].some((id) => messages.some((m) => m.id === id)));
  await client.end(session.id);
  other.close();
});

test.run();
