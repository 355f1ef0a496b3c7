/**
 * A private redis-server for tests and the chaos run, which do to Redis what no shared server should suffer
 * (FLUSHALL, SIGKILL, restarts): its own port and data directory, AOF `everysec` as production runs it, removed by
 * `close()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.ts';
import { waitUntil } from './wait-until.ts';

export interface RedisServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data directory (AOF replay), once it answers PING. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** True when a redis-server answers PING on 127.0.0.1:`port` (one fresh connection, no retries). */
export async function redisAnswersOn(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // refused until the server listens
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Sends `signal` to a child still running and resolves once it has exited. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-redis-'));
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;

  const launch = async () => {
    child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction',
    ], { stdio: 'ignore' });
    await waitUntil(() => redisAnswersOn(port), 10_000, `redis-server on ${port}`);
  };

  const kill = (signal: NodeJS.Signals = 'SIGKILL') => stopChild(child, signal);

  process.on('exit', () => child?.kill('SIGKILL'));
  await launch();
  return {
    url,
    port,
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    close: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
