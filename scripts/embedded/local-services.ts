/**
 * The services `npm start` falls back to on a machine with nothing installed but Node: an embedded Postgres
 * (PGlite with pgvector, served on a local port over the Postgres wire protocol) and a redis-server from PATH.
 * Data lives under `.tollgate/`. Each returns the URL to use and a close().
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from '../lib/free-port.ts';

export interface LocalService {
  url: string;
  close(): Promise<void>;
}

/** True when a Postgres server answers at `url` within `timeoutMs`. */
export async function postgresAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new pg.Client({ connectionString: url.replace(/\/[^/?]*(\?|$)/, '/postgres$1'), connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True when a Redis server answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/**
 * PGlite (Postgres compiled to WebAssembly) with pgvector, stored in `dir`, served on a free local port. PGlite is
 * one connection: the server takes one client at a time, so everything must share one pool of size 1.
 */
export async function startEmbeddedPostgres(dir: string): Promise<LocalService> {
  const [{ PGlite }, { vector }, { PGLiteSocketServer }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-pgvector'),
    import('@electric-sql/pglite-socket'),
  ]);
  mkdirSync(dir, { recursive: true });
  const db = await PGlite.create({ dataDir: dir, extensions: { vector } });
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 1 });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}

/** A redis-server from PATH on a free port, data (AOF everysec) in `dir`; a clear error if none is installed. */
export async function startLocalRedis(dir: string): Promise<LocalService> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', path.resolve(dir), '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!spawned) {
    throw new Error(
      'No Redis answers on 127.0.0.1:6379 and redis-server is not installed: apt install redis-server, brew install redis, or docker run -p 6379:6379 redis:7 (or set REDIS_URL).',
    );
  }
  const url = `redis://127.0.0.1:${port}`;
  let answering = false;
  for (let i = 0; i < 100 && child.exitCode === null && !(answering = await redisAnswers(url, 200)); i++) await delay(50);
  if (!answering) {
    // exited (its port taken since freePort chose it) or silent: said now, not left to hang every later connection
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on 127.0.0.1:${port} (${child.exitCode === null ? 'no answer within 5 s' : `it exited with ${child.exitCode}`}); run npm start again`);
  }
  return {
    url,
    async close() {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
