import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { Redis } from 'ioredis';
import { io } from 'socket.io-client';
import { createDatabase, withDatabase } from '#shared/db/database.ts';
import { testDatabaseBaseUrl } from '../support/database.ts';
import { waitFor } from '../support/system.ts';
import pg from 'pg';

// `npm start` as a person runs it: one command migrates a database that does not exist yet and runs both processes.
const secret = 'start-test-secret-0123456789-0123456789';
const dbName = `tollgate_test_${process.pid}_start_${randomBytes(3).toString('hex')}`;
const prefix = `tgstart_${process.pid}_${randomBytes(3).toString('hex')}`;
let child: ChildProcess;
let output = '';
let gatewayPort = 0;
let billingPort = 0;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

test.before(async () => {
  gatewayPort = await freePort();
  billingPort = await freePort();
  child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: withDatabase(testDatabaseBaseUrl(), dbName),
      REDIS_PREFIX: prefix,
      PORT: String(gatewayPort),
      BILLING_PORT: String(billingPort),
      HOST: '127.0.0.1',
      JWT_SECRET: secret,
      LOG_LEVEL: 'info',
      OPENAI_API_KEY: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
});

test.after(async () => {
  if (child.exitCode === null) child.kill('SIGKILL');
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.unlink(...keys);
  await redis.quit();
  const client = new pg.Client({ connectionString: withDatabase(testDatabaseBaseUrl()) });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await client.end();
});

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
  } catch {
    return false;
  }
}

test('npm start migrates, serves both processes, settles a session and stops cleanly on SIGTERM', async () => {
  await waitFor(async () => (await healthy(gatewayPort)) && (await healthy(billingPort)), 60_000, `both /healthz (output so far:\n${output})`);
  await waitFor(() => /\[gateway\].*gateway listening/.test(output) && /\[billing\].*billing worker started/.test(output), 30_000, 'both processes to log that they started');
  const metrics = await (await fetch(`http://127.0.0.1:${gatewayPort}/metrics`)).text();
  assert.match(metrics, /gateway_connections/);
  assert.match(metrics, /gateway_open_sessions/);
  const billingMetrics = await (await fetch(`http://127.0.0.1:${billingPort}/metrics`)).text();
  assert.match(billingMetrics, /billing_/);

  const db = createDatabase(withDatabase(testDatabaseBaseUrl(), dbName));
  try {
    const userId = randomUUID();
    const creatorId = randomUUID();
    const cloneId = randomUUID();
    await db.insertInto('user_profiles').values([
      { id: userId, email: `${userId}@t.local`, full_name: 'U', credits_remaining: '10.0000' },
      { id: creatorId, email: `${creatorId}@t.local`, full_name: 'C', role: 'creator' },
    ]).execute();
    await db.insertInto('clones').values({ id: cloneId, creator_id: creatorId, name: 'Start', base_price: '1.0000', is_published: true, is_active: true, personality_traits: '{}' }).execute();
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setAudience('authenticated').setExpirationTime('1h').sign(new TextEncoder().encode(secret));
    const client = io(`http://127.0.0.1:${gatewayPort}`, { auth: { token }, transports: ['websocket'], reconnection: false });
    const started = await client.timeout(5000).emitWithAck('session:start', { cloneId, type: 'chat' });
    assert.ok(started.ok, JSON.stringify(started));
    const reply = new Promise<{ message: { content: string } }>((resolve) => client.once('message:completed', resolve));
    const sent = await client.timeout(5000).emitWithAck('message:send', { sessionId: started.session.id, clientMessageId: '1', content: 'hello' });
    assert.ok(sent.ok);
    assert.ok((await reply).message.content.length > 0, 'the offline responder answered');
    const ended = await client.timeout(5000).emitWithAck('session:end', { sessionId: started.session.id });
    assert.ok(ended.ok);
    client.disconnect();
    const row = await waitFor(() => db.selectFrom('sessions').selectAll().where('id', '=', started.session.id).where('settled_at', 'is not', null).executeTakeFirst(), 15_000, 'settlement');
    assert.is(row.total_cost, ended.session.cost);
  } finally {
    await db.destroy();
  }

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))]);
  assert.is(code, 0, output.slice(-2000));
  assert.match(output, /gateway stopped/);
  assert.match(output, /billing stopped/);
});

test.run();
