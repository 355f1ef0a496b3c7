/**
 * Secrets never reach the logs. A whole system logs at trace level through the processes' logger
 * (shared/src/observability/logger.ts) into a buffer while it is driven through connects with good and bad tokens,
 * agent tokens, LiveKit room tokens and webhooks, an OpenAI provider that echoes the key back in its error, an
 * internal error, a flood, and the billing API; then neither JWT_SECRET, LIVEKIT_API_SECRET, OPENAI_API_KEY,
 * DEEPGRAM_API_KEY, the DATABASE_URL password, nor any token (anything shaped like a JWT) is in what was written.
 * The logger itself is also checked with each secret placed where code might put it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { io } from 'socket.io-client';
import type { FastifyInstance } from 'fastify';
import { signAgentToken } from '#shared/auth/agent-token.ts';
import { AGENT_NAMESPACE } from '#shared/contract/agent-events.ts';
import { createLogger, secretValues } from '#shared/observability/logger.ts';
import { postWebhook, signedWebhook } from '../support/livekit.ts';
import { billingAppOf, createClone, createUser, request, startSystem, TEST_JWT_SECRET, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

const OPENAI_KEY = 'sk-proj-SECRETopenaiKEY0123456789abcdefXYZ';
const DEEPGRAM_KEY = 'dg-SECRETdeepgramKEY0123456789abcdef';
const DB_PASSWORD = 'pg-SECRET-p@ss:w/rd%1';
/** Anything shaped like a JWT (header.payload.signature, base64url, starting `{"`). */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/;

let system: TestSystem;
let billing: FastifyInstance;
let provider: Server;
const lines: string[] = [];
/** Every token the test made or was handed. */
const tokens = new Set<string>();

test.before(async () => {
  // an OpenAI-compatible provider that refuses the key and quotes it back, as some do
  provider = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${key}`, type: 'invalid_request_error', code: 'invalid_api_key' } }));
    });
  });
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  const providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1`;
  const destination = { write: (line: string) => void lines.push(line) };
  system = await startSystem({
    env: {
      LOG_LEVEL: 'trace',
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: providerUrl,
      DEEPGRAM_API_KEY: DEEPGRAM_KEY,
      // the config's URL only (the test database is reached through its own pool): its password is a secret too
      DATABASE_URL: `postgres://tollgate:${encodeURIComponent(DB_PASSWORD)}@db.internal:5432/tollgate`,
      EVENT_BURST: '10',
      EVENTS_PER_SECOND: '5',
    },
    logger: (config) => createLogger(config, 'gateway', destination),
  });
  billing = billingAppOf(system, { logger: createLogger(system.config, 'billing', destination) });
  await billing.ready();
});

test.after(async () => {
  await billing?.close();
  await system?.close();
  await new Promise((resolve) => provider?.close(resolve));
});

async function attempt(url: string, auth: Record<string, unknown>): Promise<string> {
  const client: TestClient = io(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise<string>((resolve) => {
      client.once('connect', () => resolve('connected'));
      client.once('connect_error', (error) => resolve(error.message));
    });
  } finally {
    client.disconnect();
  }
}

test('driving a whole system leaves no secret and no token in its trace-level logs', async () => {
  const { config } = system;
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const token = await system.token(userId);
  tokens.add(token);

  // handshakes: good, expired, another secret, the secret itself as the token, another namespace's token
  const expired = await system.token(userId, { expiresIn: '-1m' });
  const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setAudience(config.JWT_AUDIENCE).setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(40)));
  const agentToken = await signAgentToken({ secret: config.JWT_SECRET, audience: config.JWT_AUDIENCE, agentId: 'log-test' });
  for (const t of [expired, forged, agentToken]) tokens.add(t);
  assert.is(await attempt(system.url, { token: expired }), 'unauthorized');
  assert.is(await attempt(system.url, { token: forged }), 'unauthorized');
  assert.is(await attempt(system.url, { token: config.JWT_SECRET }), 'unauthorized');
  assert.is(await attempt(system.url, { token: agentToken }), 'unauthorized');
  assert.is(await attempt(`${system.url}${AGENT_NAMESPACE}`, { token }), 'unauthorized');
  assert.is(await attempt(`${system.url}${AGENT_NAMESPACE}`, { token: agentToken }), 'connected');

  const client = await system.connect(userId, { token });
  // a chat whose reply fails: the provider's error quotes the key
  const chat = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!chat.ok) throw new Error(JSON.stringify(chat));
  const sent = await request(client, 'message:send', { sessionId: chat.session.id, clientMessageId: 'q', content: 'hello?' });
  assert.ok(sent.ok);
  await waitFor(() => lines.some((line) => line.includes('Incorrect API key provided')), 30_000, 'the provider refusal to be logged');

  // voice: room tokens, signed and forged webhooks, a webhook about an unknown room, the RoomService on the end
  const voice = await request(client, 'session:start', { cloneId, type: 'voice' });
  if (!voice.ok || !voice.livekit) throw new Error(JSON.stringify(voice));
  tokens.add(voice.livekit.token);
  const fresh = await request(client, 'session:token', { sessionId: voice.session.id });
  if (fresh.ok) tokens.add(fresh.livekit.token);
  const join = await signedWebhook({ event: 'participant_joined', room: `session-${voice.session.id}`, identity: userId, joinedAtMs: Date.now() });
  tokens.add(join.authorization);
  await fetch(`${system.url}/livekit/webhook`, { method: 'POST', headers: { authorization: join.authorization, 'content-type': 'application/webhook+json' }, body: join.body });
  const forgedHook = await signedWebhook({ event: 'room_finished', room: `session-${voice.session.id}` }, 'not-the-livekit-secret-0123456789');
  tokens.add(forgedHook.authorization);
  await fetch(`${system.url}/livekit/webhook`, { method: 'POST', headers: { authorization: forgedHook.authorization }, body: forgedHook.body });
  assert.is(await postWebhook(system.url, { event: 'room_finished', room: `session-${randomUUID()}` }), 200);
  await request(client, 'session:end', { sessionId: voice.session.id });
  await request(client, 'session:end', { sessionId: chat.session.id });

  // an internal error (the account's live state is not a hash), and a flood
  const broken = await createUser(system);
  const brokenClient = await system.connect(broken);
  await system.redis.set(`${config.REDIS_PREFIX}:u:{${broken}}:acct`, 'not a hash');
  const internal = await request(brokenClient, 'session:start', { cloneId, type: 'chat' });
  assert.is(internal.ok ? 'ok' : internal.error.code, 'internal');
  await system.redis.del(`${config.REDIS_PREFIX}:u:{${broken}}:acct`);
  for (let i = 0; i < 100; i++) (brokenClient as unknown as { emit(e: string, p: unknown): void }).emit('session:get', { sessionId: randomUUID() });
  await waitFor(() => !brokenClient.connected, 5000, 'the flooding socket to be cut');

  // the billing API with good and bad tokens
  const admin = await createUser(system);
  await system.database.db.updateTable('user_profiles').set({ role: 'admin' }).where('id', '=', admin).execute();
  const adminToken = await system.token(admin);
  tokens.add(adminToken);
  for (const bearer of [adminToken, expired, forged, TEST_JWT_SECRET]) {
    await billing.inject({ method: 'GET', url: '/api/ledger/sessions', headers: { authorization: `Bearer ${bearer}` } });
  }
  client.disconnect();
  await waitFor(() => lines.some((line) => line.includes('socket flooding')), 5000, 'the flood to be logged');

  const output = lines.join('');
  assert.ok(output.includes('"level":50') && output.includes('event failed'), 'the internal error was logged');
  const secrets: Record<string, string> = {
    JWT_SECRET: config.JWT_SECRET,
    LIVEKIT_API_SECRET: config.LIVEKIT_API_SECRET,
    OPENAI_API_KEY: OPENAI_KEY,
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    'DATABASE_URL password': DB_PASSWORD,
    'DATABASE_URL password (URL-encoded)': encodeURIComponent(DB_PASSWORD),
  };
  for (const [name, value] of Object.entries(secrets)) assert.not.ok(output.includes(value), `${name} is in the logs`);
  for (const t of tokens) {
    assert.not.ok(output.includes(t), `a token is in the logs: ${t.slice(0, 20)}…`);
    assert.not.ok(output.includes(t.split('.')[2]!), 'a token signature is in the logs');
  }
  assert.not.match(output, JWT_SHAPE, 'something shaped like a JWT is in the logs');
  console.log(`  ${lines.length} log lines checked`);
  if (process.env.SHOW_LOGS) console.log(output);
});

test('the logger redacts secret fields and scrubs the configured secrets wherever they are written', () => {
  const written: string[] = [];
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
  const config = {
    LOG_LEVEL: 'trace' as const,
    JWT_SECRET: 'jwt-SECRET-0123456789-0123456789-abcdefgh',
    LIVEKIT_API_SECRET: 'lk-SECRET-0123456789',
    OPENAI_API_KEY: OPENAI_KEY,
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    DATABASE_URL: `postgres://tollgate:${encodeURIComponent(DB_PASSWORD)}@db.internal:5432/tollgate`,
    REDIS_URL: 'redis://:redis-SECRET-pw@cache.internal:6379',
  };
  const logger = createLogger(config, 'unit', { write: (line: string) => void written.push(line) });
  const error = Object.assign(new Error(`connect to ${config.DATABASE_URL} failed with key ${OPENAI_KEY} and token ${jwt}`), {
    config: { headers: { authorization: `Token ${DEEPGRAM_KEY}` } },
    password: DB_PASSWORD,
  });
  logger.error({ err: error, token: jwt, authorization: `Bearer ${jwt}`, headers: { authorization: jwt }, handshake: { auth: { token: jwt } } }, 'provider call failed');
  logger.info({ env: { JWT_SECRET: config.JWT_SECRET, LIVEKIT_API_SECRET: config.LIVEKIT_API_SECRET } }, `redis at ${config.REDIS_URL}`);
  logger.warn({ note: JSON.stringify({ key: config.LIVEKIT_API_SECRET, quoted: `"${config.JWT_SECRET}"` }) }, `encoded ${encodeURIComponent(config.JWT_SECRET)}`);
  const output = written.join('');
  for (const value of [...secretValues(config), 'redis-SECRET-pw', DB_PASSWORD, jwt]) {
    assert.not.ok(output.includes(value), `${value} is in ${output}`);
  }
  // what is not a secret stays readable
  assert.match(output, /provider call failed/);
  assert.match(output, /connect to postgres:\/\/tollgate:\[redacted\]@db\.internal:5432\/tollgate failed/);
  assert.match(output, /redis at redis:\/\/:\[redacted\]@cache\.internal:6379/);
});

test.run();
