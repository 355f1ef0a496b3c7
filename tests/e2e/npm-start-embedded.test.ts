import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { DEMO_CLONE_ID } from '../../scripts/lib/seed-demo-data.ts';
import { waitFor } from '../support/system.ts';

// `npm start` on a machine with no Postgres or Redis configured: embedded PGlite and a redis-server from PATH,
// everything in one process, a banner with demo tokens, a whole session settled, Ctrl-C stops it all.
let child: ChildProcess;
let output = '';
let dataDir: string;
test.before(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'tollgate-embedded-'));
});
test.after(() => {
  // the whole process group: a failed run must not leave the redis-server npm start spawned behind
  if (child?.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test('embedded Postgres and Redis: migrated, seeded, a chat session settles, SIGINT stops everything', async () => {
  // ports chosen by the processes themselves (port 0) and read off the banner: a port picked here first could be
  // taken by another process before npm start binds it
  const env = { ...process.env, EMBEDDED_SERVICES: 'always', DATA_DIR: dataDir, PORT: '0', BILLING_PORT: '0', HOST: '127.0.0.1', OPENAI_API_KEY: '', LOG_LEVEL: 'warn', MIN_START_SECONDS: '0' };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'NODE_ENV', 'JWT_SECRET']) delete (env as Record<string, string | undefined>)[name];
  // its own process group, so the after hook can end it and everything it started
  child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode} before its banner:\n${output.slice(-2000)}`);
    return output.includes('Ctrl-C stops everything');
  }, 90_000, 'the banner');
  const gatewayPort = Number(/chat\s+http:\/\/localhost:(\d+)\//.exec(output)![1]);
  const billingPort = Number(/console\s+http:\/\/localhost:(\d+)\//.exec(output)![1]);
  assert.match(output, /embedded PGlite \(with pgvector\)/);
  assert.match(output, /redis-server from PATH/);
  const userToken = /user\s+(\S+)/.exec(output)![1]!;
  const adminToken = /admin\s+(\S+)/.exec(output)![1]!;

  const client = io(`http://127.0.0.1:${gatewayPort}`, { auth: { token: userToken }, transports: ['websocket'], reconnection: false });
  const started = await client.timeout(10_000).emitWithAck('session:start', { cloneId: DEMO_CLONE_ID, type: 'chat' });
  assert.ok(started.ok, JSON.stringify(started));
  const completed = new Promise<{ message: { citations?: unknown[] } }>((resolve) => client.once('message:completed', resolve));
  const sent = await client.timeout(10_000).emitWithAck('message:send', { sessionId: started.session.id, clientMessageId: '1', content: 'Tell me about the Analytical Engine' });
  assert.ok(sent.ok, JSON.stringify(sent));
  const reply = await completed;
  assert.ok((reply.message.citations ?? []).length > 0, 'the seeded documents are retrieved (pgvector) and cited');
  const ended = await client.timeout(10_000).emitWithAck('session:end', { sessionId: started.session.id });
  assert.ok(ended.ok);
  client.disconnect();

  const listed = await waitFor(async () => {
    const response = await fetch(`http://127.0.0.1:${billingPort}/api/ledger/sessions`, { headers: { authorization: `Bearer ${adminToken}` } });
    const body = (await response.json()) as { sessions: Array<{ id: string; totalCost: string }> };
    return body.sessions.find((s) => s.id === started.session.id);
  }, 30_000, 'the settled session in the billing API');
  assert.is(listed.totalCost, ended.session.cost);

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  assert.is(await exited, 0, output.slice(-2000));
});

test('no Redis anywhere and no redis-server installed: one line says how to get it, and the process exits 1', async () => {
  const env: Record<string, string | undefined> = { ...process.env, EMBEDDED_SERVICES: 'always', DATA_DIR: dataDir, PORT: '0', BILLING_PORT: '0', LOG_LEVEL: 'warn' };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'NODE_ENV', 'JWT_SECRET']) delete env[name];
  env.PATH = path.join(dataDir, 'empty-path'); // no redis-server on it (node is started by its absolute path)
  const lone = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let said = '';
  lone.stdout!.on('data', (chunk) => (said += chunk));
  lone.stderr!.on('data', (chunk) => (said += chunk));
  const code = await new Promise<number | null>((resolve) => lone.once('exit', (c) => resolve(c)));
  assert.is(code, 1, said.slice(-2000));
  const line = said.split('\n').find((l) => l.includes('redis-server is not installed'));
  assert.ok(line, said.slice(-2000));
  assert.match(line!, /apt install redis-server/);
  assert.match(line!, /brew install redis/);
  assert.match(line!, /docker run/);
  assert.not.match(said, /\n\s+at /, 'no stack trace');
});

test.run();
