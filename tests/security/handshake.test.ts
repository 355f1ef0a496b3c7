/**
 * The handshake and the life of an authenticated socket: only allowed browser origins, only valid HS256 tokens of
 * existing users (alg none, another secret, expired, another audience, unknown or deleted user: `unauthorized`), and
 * a socket whose token expires or whose user is deleted while connected is cut within TOKEN_RECHECK_MS, also after a
 * connection state recovery (which skips the handshake). A client refreshes by reconnecting with a new token.
 */
import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import type { AuthExpiredReason } from '#shared/contract/socket-events.ts';
import { TollgateClient, type ConnectionState } from '#shared/client/tollgate-client.ts';
import { connectionsKey } from '#shared/live-state/keys.ts';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../support/browser.ts';
import { createClone, createUser, nextEvent, request, startSystem, TEST_JWT_SECRET, waitFor, type TestClient, type TestSystem } from '../support/system.ts';
import { signUserToken } from '../../scripts/lib/sign-user-token.ts';

const ALLOWED_ORIGIN = 'http://shop.example';
const OTHER_ORIGIN = 'http://evil.example';
const RECHECK_MS = 200;
/** How late after its deadline a recheck may land on this machine (timer jitter, the query). */
const SLACK_MS = 400;

let system: TestSystem;
/** A site embedding the widget (its own origin on loopback, allowed like ALLOWED_ORIGIN); each test sets its handler. */
const site: { url: string; server?: Server; handler: (request: IncomingMessage, response: ServerResponse) => void | Promise<void> } = {
  url: '',
  handler: (_request, response) => void response.writeHead(404).end(),
};
test.before(async () => {
  site.server = createServer((request, response) => void site.handler(request, response));
  await new Promise<void>((resolve) => site.server!.listen(0, '127.0.0.1', resolve));
  site.url = `http://127.0.0.1:${(site.server.address() as AddressInfo).port}`;
  system = await startSystem({ env: { ALLOWED_ORIGINS: `${ALLOWED_ORIGIN},${site.url}`, TOKEN_RECHECK_MS: String(RECHECK_MS) } });
});
test.after(async () => {
  await system?.close();
  site.server?.closeAllConnections();
  await new Promise((resolve) => site.server?.close(resolve));
});

async function rejection(auth: Record<string, unknown>): Promise<string> {
  try {
    const client = await system.connect(randomUUID(), auth);
    client.disconnect();
    return 'connected';
  } catch (error) {
    return (error as Error).message;
  }
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A valid token of the user whose `exp` is `expSeconds` (seconds since the epoch). */
function tokenExpiringAt(userId: string, expSeconds: number): Promise<string> {
  return signUserToken({ secret: TEST_JWT_SECRET, audience: system.config.JWT_AUDIENCE, userId, expiresIn: expSeconds });
}

/** Resolves when the server cuts the client: the `auth:expired` reason, the disconnect reason and instant. */
function cut(client: TestClient, timeoutMs = 10_000): Promise<{ notice: AuthExpiredReason | undefined; reason: string; at: number }> {
  let notice: AuthExpiredReason | undefined;
  client.on('auth:expired', ({ reason }) => (notice = reason));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not disconnected within ${timeoutMs} ms`)), timeoutMs);
    client.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve({ notice, reason, at: Date.now() });
    });
  });
}

/** A raw websocket upgrade to the gateway with an Origin header: `101` when accepted, else the refusal's status and body. */
function upgrade(origin: string | undefined): Promise<string> {
  const url = `${system.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, origin ? { origin } : {});
    socket.once('open', () => {
      socket.close();
      resolve('101');
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on('end', () => resolve(`${response.statusCode} ${body}`));
      response.on('error', () => resolve(`${response.statusCode} ${body}`));
    });
    socket.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

test('a valid token connects and records last_login', async () => {
  const userId = await createUser(system);
  const client = await system.connect(userId);
  assert.ok(client.connected);
  const row = await system.database.db.selectFrom('user_profiles').select('last_login').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.ok(row.last_login instanceof Date);
  client.disconnect();
});

test('no token is unauthorized', async () => {
  assert.is(await rejection({}), 'unauthorized');
});

test('a token signed with another secret is unauthorized', async () => {
  const userId = await createUser(system);
  assert.is(await rejection({ token: await system.token(userId, { secret: 'another-secret-0123456789-0123456789-xyz' }) }), 'unauthorized');
});

test('an unsigned alg:none token is unauthorized', async () => {
  const userId = await createUser(system);
  const now = Math.floor(Date.now() / 1000);
  const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: userId, aud: 'authenticated', exp: now + 3600 })}.`;
  assert.is(await rejection({ token }), 'unauthorized');
});

test('an expired token is unauthorized', async () => {
  const userId = await createUser(system);
  assert.is(await rejection({ token: await system.token(userId, { expiresIn: '-10s' }) }), 'unauthorized');
});

test('a token for another audience is unauthorized', async () => {
  const userId = await createUser(system);
  assert.is(await rejection({ token: await system.token(userId, { audience: 'someone-else' }) }), 'unauthorized');
});

test('a valid token of an unknown user is unauthorized', async () => {
  assert.is(await rejection({ token: await system.token(randomUUID()) }), 'unauthorized');
});

test('a valid token of a deleted user is unauthorized', async () => {
  const userId = await createUser(system);
  const token = await system.token(userId);
  const before = await system.connect(userId, { token });
  before.disconnect();
  await system.database.db.deleteFrom('user_profiles').where('id', '=', userId).execute();
  assert.is(await rejection({ token }), 'unauthorized');
});

test('a browser origin outside ALLOWED_ORIGINS is refused at the upgrade; an allowed one and none (not a browser) connect', async () => {
  // engine.io answers a refused upgrade 400 with the reason, a refused polling request 403
  assert.is(await upgrade(OTHER_ORIGIN), '400 Forbidden');
  assert.is(await upgrade(`${ALLOWED_ORIGIN}.evil.example`), '400 Forbidden', 'a prefix of an allowed origin is not it');
  assert.is(await upgrade(ALLOWED_ORIGIN), '101');
  assert.is(await upgrade(undefined), '101');
  // the long-polling transport is held to the same list
  const polling = await fetch(`${system.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: OTHER_ORIGIN } });
  assert.is(polling.status, 403);
  assert.equal(await polling.json(), { code: 4, message: 'Forbidden' });

  // a real socket.io client with a valid token: refused from the other origin, accepted from the allowed one
  const userId = await createUser(system);
  const token = await system.token(userId);
  const attempt = (origin: string) => {
    const client: TestClient = io(system.url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { origin } });
    return new Promise<string>((resolve) => {
      client.once('connect', () => resolve('connected'));
      client.once('connect_error', (error) => resolve(`refused: ${error.message}`));
    }).finally(() => client.disconnect());
  };
  assert.match(await attempt(OTHER_ORIGIN), /^refused/);
  assert.is(await attempt(ALLOWED_ORIGIN), 'connected');
});

test('a token that expires while connected is cut within TOKEN_RECHECK_MS of its exp, told why; the user\'s other sockets stay', async () => {
  const userId = await createUser(system);
  const exp = Math.ceil(Date.now() / 1000) + 2;
  const expiring = await system.connect(userId, { token: await tokenExpiringAt(userId, exp) });
  const lasting = await system.connect(userId);
  const wasCut = cut(expiring);
  // usable until then
  const answer = await request(expiring, 'session:get', { sessionId: randomUUID() });
  assert.is(answer.ok ? 'ok' : answer.error.code, 'not_found');
  const { notice, reason, at } = await wasCut;
  assert.is(notice, 'token_expired');
  assert.is(reason, 'io server disconnect');
  assert.ok(at >= exp * 1000, `cut ${exp * 1000 - at} ms before its exp`);
  assert.ok(at <= exp * 1000 + RECHECK_MS + SLACK_MS, `cut ${at - exp * 1000} ms after its exp`);
  assert.ok(lasting.connected, 'the socket with a valid token is still connected');
  const still = await request(lasting, 'session:get', { sessionId: randomUUID() });
  assert.is(still.ok ? 'ok' : still.error.code, 'not_found');
  // its connection slot was given back
  await waitFor(async () => (await system.redis.zcard(connectionsKey(system.config.REDIS_PREFIX, userId))) === 1, 2000, 'one slot left');

  // refreshing: the same socket reconnects with a new token
  expiring.auth = { token: await system.token(userId) };
  expiring.connect();
  await new Promise<void>((resolve, reject) => {
    expiring.once('connect', () => resolve());
    expiring.once('connect_error', reject);
  });
  const refreshed = await request(expiring, 'session:get', { sessionId: randomUUID() });
  assert.is(refreshed.ok ? 'ok' : refreshed.error.code, 'not_found');
  expiring.disconnect();
  lasting.disconnect();
});

test('a user deleted while connected is cut within TOKEN_RECHECK_MS', async () => {
  const userId = await createUser(system);
  const client = await system.connect(userId);
  const wasCut = cut(client);
  const deletedAt = Date.now();
  await system.database.db.deleteFrom('user_profiles').where('id', '=', userId).execute();
  const { notice, at } = await wasCut;
  assert.is(notice, 'unauthorized');
  assert.ok(at - deletedAt <= RECHECK_MS + SLACK_MS, `cut ${at - deletedAt} ms after the deletion`);
});

test('a person forgotten by tollgate_forget_user (a Supabase soft delete) is cut while connected and refused after', async () => {
  const userId = await createUser(system);
  const token = await system.token(userId);
  const client = await system.connect(userId, { token });
  const wasCut = cut(client);
  const forgottenAt = Date.now();
  await sql`SELECT tollgate_forget_user(${userId})`.execute(system.database.db);
  const { notice, at } = await wasCut;
  assert.is(notice, 'unauthorized');
  assert.ok(at - forgottenAt <= RECHECK_MS + SLACK_MS, `cut ${at - forgottenAt} ms after`);
  assert.is(await rejection({ token }), 'unauthorized');
});

test('a token naming its user in upper case is the same user: connected, in their room, and not cut at the recheck', async () => {
  const userId = await createUser(system);
  const client = await system.connect(userId, { token: await system.token(userId.toUpperCase()) });
  let disconnected = false;
  client.on('disconnect', () => (disconnected = true));
  const sockets = [...system.gateway.io.of('/').sockets.values()].filter((socket) => socket.id === client.id);
  assert.is(sockets[0]?.data.userId, userId, 'the canonical (lower-case) id');
  await new Promise((resolve) => setTimeout(resolve, RECHECK_MS * 3));
  assert.is(disconnected, false, 'still connected after three rechecks');
  client.disconnect();
});

test('a socket restored by connection state recovery (no handshake) keeps its token\'s exp and is cut at it', async () => {
  const userId = await createUser(system);
  const exp = Math.ceil(Date.now() / 1000) + 3;
  const token = await tokenExpiringAt(userId, exp);
  const client: TestClient = io(system.url, { auth: { token }, transports: ['websocket'], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 50 });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('connect_error', reject);
    });
    // a client is restored only once it has had an event (its offset in the stream): the session it starts
    const { cloneId } = await createClone(system);
    const updated = nextEvent(client, 'session:updated');
    const started = await request(client, 'session:start', { cloneId, type: 'chat' });
    assert.ok(started.ok);
    await updated;
    // the transport drops; the client comes back with its session id and offset and is restored
    const restored = new Promise<boolean>((resolve) => client.once('connect', () => resolve(client.recovered)));
    (client.io.engine as unknown as { close(): void }).close();
    assert.ok(await restored, 'the connection state was recovered');
    const { notice, at } = await cut(client);
    assert.is(notice, 'token_expired');
    assert.ok(at >= exp * 1000 && at <= exp * 1000 + RECHECK_MS + SLACK_MS, `cut ${at - exp * 1000} ms after its exp`);
  } finally {
    client.disconnect();
  }
});

test('TollgateClient with a token function renews its token by itself when the gateway cuts an expired one', async () => {
  const userId = await createUser(system);
  let issued = 0;
  const client = new TollgateClient();
  const states: ConnectionState[] = [];
  client.on('connection', (state) => states.push(state));
  try {
    await client.connect(system.url, () => {
      issued += 1;
      // the first token lives about two seconds, the next one an hour
      return issued === 1 ? tokenExpiringAt(userId, Math.ceil(Date.now() / 1000) + 2) : system.token(userId);
    });
    await waitFor(() => issued === 2 && client.state === 'connected', 5000, 'a reconnect with a fresh token');
    assert.equal(states.slice(-2), ['reconnecting', 'connected']);
    assert.ok((await client.history(randomUUID()).catch((error: { code: string }) => error.code)) === 'not_found');
  } finally {
    client.close();
  }
});

test('the embedded widget reconnects with a fresh token from its token URL when the gateway cuts an expired one', async () => {
  const userId = await createUser(system);
  const issued: number[] = [];
  site.handler = async (request, response) => {
    if (request.url === '/token') {
      // the first token lives a few seconds, the next ones an hour
      const exp = Math.ceil(Date.now() / 1000) + (issued.length === 0 ? 3 : 3600);
      issued.push(exp);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: await tokenExpiringAt(userId, exp) }));
      return;
    }
    response
      .writeHead(200, { 'content-type': 'text/html' })
      .end(`<!doctype html><html><body><script src="${system.url}/widget.js" data-gateway="${system.url}" data-token-url="/token" async></script></body></html>`);
  };
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${site.url}/`);
    await page.getByRole('heading', { name: 'Choose an expert' }).waitFor();
    assert.is(issued.length, 1);
    // cut at its exp, then back with a second token
    await waitFor(() => issued.length >= 2, issued[0]! * 1000 - Date.now() + RECHECK_MS + 5000, 'a second token to be asked for');
    await page.locator('.tg-connection', { hasText: 'Connected' }).waitFor();
    const sockets = [...system.gateway.io.of('/').sockets.values()].filter((socket) => socket.data.userId === userId);
    assert.equal(sockets.map((socket) => socket.data.tokenExpiresAt), [issued[1]! * 1000], 'one socket, on the fresh token');
    assert.equal(problems, []);
  } finally {
    await browser.close();
  }
});

test.run();
