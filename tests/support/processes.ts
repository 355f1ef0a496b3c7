/**
 * A Tollgate of real processes for tests that need them (several gateways, billing workers, SIGKILL): one throwaway
 * database and Redis key prefix shared by every process the cluster starts; each gateway or billing worker is
 * `node --import tsx <main.ts>` on a free port, its stdout and stderr captured. `close()` (and, as a last resort,
 * the test process's exit) kills whatever is still running and removes what the cluster created.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { io } from 'socket.io-client';
import { configSchema } from '#shared/config/config.ts';
import { connectRedis, scanKeys, type RedisClient, type RedisTarget } from '#shared/live-state/redis-client.ts';
import { freePort } from '../../scripts/lib/free-port.ts';
import type { Database } from '#shared/db/schema.ts';
import { spawnService, waitHealthy, type ServiceProcess } from '../../scripts/lib/service-process.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { TEST_JWT_SECRET, type TestClient } from './system.ts';
import { startFakeRoomService, TEST_LIVEKIT_KEY, TEST_LIVEKIT_SECRET, type FakeRoomService } from './livekit.ts';
import { signUserToken } from '../../scripts/lib/sign-user-token.ts';

export { nextEvent, request, waitFor, type TestClient } from './system.ts';

/** How long a process may take to answer GET /healthz 200 after it is spawned. */
const READY_TIMEOUT_MS = 90_000;
/** How long `close()` lets a process stop on SIGTERM before SIGKILL. */
const TERM_GRACE_MS = 5_000;

/** A spawned gateway or billing worker (scripts/lib/service-process.ts). */
export type ProcessHandle = ServiceProcess;

export interface ConnectOptions {
  /** Handshake auth instead of a valid token of the user. */
  auth?: Record<string, unknown>;
  /** Let socket.io-client reconnect (default false). */
  reconnection?: boolean;
}

export interface Cluster {
  database: TestDatabase;
  /** The environment every process of the cluster starts with (before its own overrides). */
  env: Record<string, string>;
  /** REDIS_PREFIX of the cluster. */
  prefix: string;
  /** A Redis connection for assertions. */
  redis: RedisClient;
  /** The LiveKit RoomService the gateways call. */
  roomService: FakeRoomService;
  /** Spawns gateway/src/main.ts on a free PORT and resolves once GET /healthz answers 200. */
  startGateway(name: string, env?: Record<string, string>): Promise<ProcessHandle>;
  /** Spawns billing/src/main.ts on a free BILLING_PORT and resolves once GET /healthz answers 200. */
  startBilling(name: string, env?: Record<string, string>): Promise<ProcessHandle>;
  /** A valid access token of the user. */
  token(userId: string): Promise<string>;
  /** A connected typed client of the user (websocket transport); rejects with the connect_error. */
  connect(gateway: ProcessHandle | string, userId: string, options?: ConnectOptions): Promise<TestClient>;
  /** Closes clients, stops every process still running, deletes the prefix's Redis keys, drops the database. */
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Overrides of the shared environment. */
  env?: Record<string, string>;
}


export { freePort };

/** Deletes every key matching `pattern` (SCAN + UNLINK). */
/** Removes every key matching `pattern` (on each node of a cluster; one UNLINK per key, as keys span slots). */
export async function deleteKeys(redis: RedisClient, pattern: string): Promise<void> {
  await scanKeys(redis, pattern, async (keys) => {
    await Promise.all(keys.map((key) => redis.unlink(key)));
  });
}


/** The parent's environment without any Tollgate setting, so only the cluster's settings reach a child. */
function baseEnvironment(): Record<string, string> {
  const settings = new Set(Object.keys(configSchema.shape));
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !settings.has(key)) env[key] = value;
  }
  return env;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const database = await createTestDatabase();
  const prefix = `tgproc_${process.pid}_${randomBytes(4).toString('hex')}`;
  const roomService = await startFakeRoomService();
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    // the suite's cluster run (scripts/run-tests.ts): the processes on a real Redis Cluster
    REDIS_CLUSTER_NODES: process.env.TEST_REDIS_CLUSTER_NODES ?? '',
    REDIS_PREFIX: prefix,
    HOST: '127.0.0.1',
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'info',
    OPENAI_API_KEY: '',
    LIVEKIT_API_URL: roomService.url,
    LIVEKIT_API_KEY: TEST_LIVEKIT_KEY,
    LIVEKIT_API_SECRET: TEST_LIVEKIT_SECRET,
    ...options.env,
  };
  const redis = connectRedis(env as RedisTarget);
  const base = baseEnvironment();
  const handles: ProcessHandle[] = [];
  const clients = new Set<TestClient>();

  const start = async (name: string, script: string, portVariable: string, overrides: Record<string, string>) => {
    const port = await freePort();
    // A gateway also gets a BILLING_PORT (and the worker a PORT) of its own, so no two processes share a default.
    const other = portVariable === 'PORT' ? 'BILLING_PORT' : 'PORT';
    const handle = spawnService({
      name,
      script,
      port,
      env: { ...base, ...env, [other]: String(await freePort()), ...overrides, [portVariable]: String(port) },
    });
    handles.push(handle);
    await waitHealthy(handle, READY_TIMEOUT_MS);
    return handle;
  };

  const token = (userId: string) =>
    signUserToken({ secret: env.JWT_SECRET!, audience: env.JWT_AUDIENCE, userId });

  return {
    database,
    env,
    roomService,
    prefix,
    redis,
    startGateway: (name, overrides = {}) => start(name, 'gateway/src/main.ts', 'PORT', overrides),
    startBilling: (name, overrides = {}) => start(name, 'billing/src/main.ts', 'BILLING_PORT', overrides),
    token,
    async connect(gateway, userId, connectOptions = {}) {
      const url = typeof gateway === 'string' ? gateway : gateway.url;
      const client: TestClient = io(url, {
        auth: connectOptions.auth ?? { token: await token(userId) },
        transports: ['websocket'],
        reconnection: connectOptions.reconnection ?? false,
        forceNew: true,
      });
      clients.add(client);
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('connect_error', (error) => {
          client.disconnect();
          reject(error);
        });
      });
      return client;
    },
    async close() {
      for (const client of clients) client.disconnect();
      await Promise.all(
        handles.map(async (handle) => {
          if (handle.exited) return;
          const stopped = handle.kill('SIGTERM');
          const timer = setTimeout(() => void handle.kill('SIGKILL'), TERM_GRACE_MS);
          await stopped;
          clearTimeout(timer);
        }),
      );
      try {
        await deleteKeys(redis, `${prefix}:*`);
      } finally {
        redis.disconnect();
        await roomService.close();
        await database.drop();
      }
    },
  };
}

/** Inserts a user with the given credits; returns its id. */
export async function createUser(
  db: Kysely<Database>,
  credits = '100.0000',
  role: 'user' | 'creator' = 'user',
): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('user_profiles')
    .values({ id, email: `${id}@test.local`, full_name: 'Test User', role, credits_remaining: credits })
    .execute();
  return id;
}

/** Inserts a creator and a clone with the given per-minute rate; returns the clone and creator ids. */
export async function createClone(
  db: Kysely<Database>,
  rate = '1.0000',
  flags: { published?: boolean; active?: boolean } = {},
): Promise<{ cloneId: string; creatorId: string }> {
  const creatorId = await createUser(db, '0.0000', 'creator');
  const cloneId = randomUUID();
  await db
    .insertInto('clones')
    .values({
      id: cloneId,
      creator_id: creatorId,
      name: 'Dr. Test',
      description: 'A clone for tests',
      bio: 'Knows about testing.',
      expertise_areas: ['testing', 'billing'],
      base_price: rate,
      personality_traits: JSON.stringify({ tone: 'precise' }),
      is_published: flags.published ?? true,
      is_active: flags.active ?? true,
    })
    .execute();
  return { cloneId, creatorId };
}
