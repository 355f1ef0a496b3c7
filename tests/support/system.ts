/**
 * A whole Tollgate for one test file, on real services: a throwaway database, a fresh Redis key prefix,
 * the billing worker and a gateway on a free port (replies from a local fake OpenAI server through the real SDK).
 * `connect()` gives a typed socket.io-client; `close()` stops everything and removes what it created.
 */
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '#shared/config/config.ts';
import { connectRedis, type RedisClient } from '#shared/live-state/redis-client.ts';
import type { ClientToServerEvents, LiveKitJoin, ServerToClientEvents, WireSession } from '#shared/contract/socket-events.ts';
import { signAgentToken } from '#shared/auth/agent-token.ts';
import { BillingWorker } from '#billing/billing-worker.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { Reconciler } from '#billing/reconcile/reconciler.ts';
import { Gateway } from '#gateway/gateway.ts';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildBillingApp, type BillingAppOptions } from '#billing/http/billing-app.ts';
import { refreshBalance } from '#shared/live-state/balance-refresh.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { QueueJobSink } from '#gateway/outbox/queue-job-sink.ts';
import type { BillingJobSink } from '#gateway/outbox/outbox-relay.ts';
import { createReplyGenerator } from '#gateway/replies/reply-generator.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { startFakeOpenAi, type FakeOpenAi, type FakeOpenAiOptions } from './fake-openai.ts';
import { postWebhook, startFakeRoomService, TEST_LIVEKIT_KEY, TEST_LIVEKIT_SECRET, type FakeRoomService } from './livekit.ts';
// One implementation of the row helpers, shared with the multi-process harness (which takes a Kysely db).
import { createClone as createCloneRow, createUser as createUserRow, deleteKeys } from './processes.ts';
import { signUserToken } from '../../scripts/lib/sign-user-token.ts';

export type TestClient = Socket<ServerToClientEvents, ClientToServerEvents>;

export const TEST_JWT_SECRET = 'test-secret-0123456789-0123456789-abcdef';

export interface TestSystem {
  config: Config;
  database: TestDatabase;
  /** The live state's Redis: one server, or the cluster TEST_REDIS_CLUSTER_NODES names. */
  redis: RedisClient;
  queue: BillingQueues;
  gateway: Gateway;
  /** The live state in Redis, read and written as any process does (shared/src/live-state). */
  store: SessionStore;
  worker: BillingWorker;
  /** The billing process's reconciler (not started: tests run it with runOnce()). */
  reconciler: Reconciler;
  openai: FakeOpenAi;
  /** The LiveKit RoomService the gateway calls (records removals and deletions). */
  roomService: FakeRoomService;
  url: string;
  /** A valid access token for the user (claims overridable). */
  token(userId: string, options?: { expiresIn?: string; audience?: string; secret?: string }): Promise<string>;
  /** A connected client of the user; rejects with the connect_error message. */
  connect(userId: string, auth?: Record<string, unknown>): Promise<TestClient>;
  /** Another gateway process's worth of gateway (own Redis connection, same config, database and queue); closed with the system. */
  addGateway(): Promise<ExtraGateway>;
  close(): Promise<void>;
}

export interface ExtraGateway {
  gateway: Gateway;
  url: string;
  connect(userId: string, auth?: Record<string, unknown>): Promise<TestClient>;
  close(): Promise<void>;
}

export interface SystemOptions {
  /** Environment overrides on top of the test defaults. */
  env?: Record<string, string>;
  openai?: FakeOpenAiOptions;
  /** Start the billing worker (default true); without it, jobs wait in the queue for the test to run. */
  worker?: boolean;
  /** Wraps the gateway's billing job sink (to inject failures). */
  wrapJobs?: (sink: BillingJobSink) => BillingJobSink;
  /** The gateway's and billing worker's logger, made from the system's config; default silent (TEST_LOG_LEVEL). */
  logger?: (config: Config) => Logger;
}

export async function startSystem(options: SystemOptions = {}): Promise<TestSystem> {
  const database = await createTestDatabase();
  const openai = await startFakeOpenAi(options.openai);
  const roomService = await startFakeRoomService();
  const prefix = `tgtest_${process.pid}_${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    // the suite's cluster run (scripts/run-tests.ts) sets it: the same tests on a real Redis Cluster
    REDIS_CLUSTER_NODES: process.env.TEST_REDIS_CLUSTER_NODES ?? '',
    REDIS_PREFIX: prefix,
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
    OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: openai.baseUrl,
    METER_TICK_MS: '100',
    // admission control off: a busy test machine's event loop must not refuse a test's start (tests that are about
    // admission set their own limits)
    ADMISSION_EVENT_LOOP_MS: '0',
    ADMISSION_REDIS_MS: '0',
    ADMISSION_REPLIES_WAITING: '0',
    DUE_POLL_MS: '20',
    MIN_START_SECONDS: '0',
    LIVEKIT_URL: 'ws://127.0.0.1:7880',
    LIVEKIT_API_URL: roomService.url,
    LIVEKIT_API_KEY: TEST_LIVEKIT_KEY,
    LIVEKIT_API_SECRET: TEST_LIVEKIT_SECRET,
    // the RoomService presence check needs rooms the fake knows: tests about it set their own interval
    ROOM_CHECK_MS: '3600000',
    ...options.env,
  });
  const logger = options.logger?.(config) ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const redis = connectRedis(config);
  const queueRedis = connectRedis(config);
  const workerRedis = connectRedis(config);
  const queue = new BillingQueues(queueRedis, prefix);
  const queueSink = new QueueJobSink(queue);
  const jobs = options.wrapJobs ? options.wrapJobs(queueSink) : queueSink;
  const gateway = new Gateway({ config, db: database.db, redis, queue, jobs, replies: createReplyGenerator(config), logger });
  // the test's own client of the live state (as the billing process has one), on the test's connection
  const store = new SessionStore(redis, storeOptions(config));
  const reconciler = new Reconciler({
    db: database.db,
    store,
    platformFeeRate: config.platformFeeRate,
    logger,
    intervalMs: config.RECONCILE_MS,
    endedGraceMs: config.RECONCILE_MS,
    onSettled: async (result) => {
      await refreshBalance(database.db, store, result.userId);
    },
  });
  const worker = new BillingWorker({
    config,
    db: database.db,
    connection: workerRedis,
    redisPrefix: prefix,
    logger,
    onSettled: async (result) => {
      await refreshBalance(database.db, store, result.userId);
    },
  });
  if (options.worker !== false) await worker.start();
  const port = await gateway.start();
  const url = `http://127.0.0.1:${port}`;
  const clients = new Set<TestClient>();

  const token: TestSystem['token'] = (userId, claims = {}) =>
    signUserToken({ secret: claims.secret ?? TEST_JWT_SECRET, audience: claims.audience ?? config.JWT_AUDIENCE, userId, expiresIn: claims.expiresIn });

  const connectTo = async (url: string, userId: string, auth?: Record<string, unknown>): Promise<TestClient> => {
    const client: TestClient = io(url, {
      auth: auth ?? { token: await token(userId) },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    clients.add(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('connect_error', (error) => reject(error));
    });
    return client;
  };
  const connect: TestSystem['connect'] = (userId, auth) => connectTo(url, userId, auth);

  const extraGateways = new Set<ExtraGateway>();
  const addGateway: TestSystem['addGateway'] = async () => {
    const extraRedis = connectRedis(config);
    const extra = new Gateway({ config, db: database.db, redis: extraRedis, queue, jobs, replies: createReplyGenerator(config), logger });
    const extraUrl = `http://127.0.0.1:${await extra.start()}`;
    let closed: Promise<void> | undefined;
    const handle: ExtraGateway = {
      gateway: extra,
      url: extraUrl,
      connect: (userId, auth) => connectTo(extraUrl, userId, auth),
      close: () =>
        (closed ??= (async () => {
          extraGateways.delete(handle);
          await extra.close();
          await extraRedis.quit();
        })()),
    };
    extraGateways.add(handle);
    return handle;
  };

  return {
    config,
    database,
    redis,
    queue,
    gateway,
    store,
    worker,
    reconciler,
    openai,
    roomService,
    url,
    token,
    connect,
    addGateway,
    async close() {
      for (const client of clients) client.disconnect();
      await Promise.all([...extraGateways].map((extra) => extra.close()));
      await gateway.close();
      await worker.close();
      await Promise.all(queue.partitions.map((partition) => partition.obliterate({ force: true }).catch(() => undefined)));
      await queue.close();
      await deleteKeys(redis, `${prefix}:*`);
      await Promise.all([redis.quit(), queueRedis.quit(), workerRedis.quit()]);
      await openai.close();
      await roomService.close();
      await database.drop();
    },
  };
}

/** Sends an event and resolves with its ack (rejects if none comes within `timeoutMs`). */
export function request<E extends keyof ClientToServerEvents>(
  client: TestClient,
  event: E,
  payload: Parameters<ClientToServerEvents[E]>[0],
  timeoutMs = 5000,
): Promise<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0]> {
  return (client.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<never> }).emitWithAck(event, payload);
}

/** The next `event` on the client that satisfies `accept`, within `timeoutMs`. */
export function nextEvent<E extends keyof ServerToClientEvents>(
  client: TestClient,
  event: E,
  accept: (...args: Parameters<ServerToClientEvents[E]>) => boolean = () => true,
  timeoutMs = 5000,
): Promise<Parameters<ServerToClientEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: unknown[]) => {
      if (!accept(...(args as Parameters<ServerToClientEvents[E]>))) return;
      clearTimeout(timer);
      client.off(event, listener as never);
      resolve(args[0] as Parameters<ServerToClientEvents[E]>[0]);
    };
    const timer = setTimeout(() => {
      client.off(event, listener as never);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on(event, listener as never);
  });
}

export { waitFor } from '../../scripts/lib/wait-until.ts';

/** A `wrapJobs` whose sink throws while `down()` says the queue is unreachable (the outbox must hold the facts). */
export function unreachableWhile(down: () => boolean): (sink: BillingJobSink) => BillingJobSink {
  return (sink) => ({
    async addJobs(userId, jobs) {
      if (down()) throw new Error('injected: the queue is unreachable');
      await sink.addJobs(userId, jobs);
    },
  });
}

/** A user with `credits`, a clone priced `ratePerMinute`, and the user's connected client: most tests' first lines. */
export async function connectedUserAndClone(system: TestSystem, credits: string, ratePerMinute: string): Promise<{ userId: string; cloneId: string; client: TestClient }> {
  const userId = await createUser(system, credits);
  const { cloneId } = await createClone(system, ratePerMinute);
  return { userId, cloneId, client: await system.connect(userId) };
}

/**
 * A user with `credits`, connected, who started a voice (or video) session with a clone at `ratePerMinute`: paused,
 * nobody in its room yet.
 */
export async function startedCall(
  system: TestSystem,
  credits: string,
  ratePerMinute: string,
  type: 'voice' | 'video' = 'voice',
): Promise<{ userId: string; cloneId: string; client: TestClient; session: WireSession; livekit: LiveKitJoin; room: string }> {
  const { userId, cloneId, client } = await connectedUserAndClone(system, credits, ratePerMinute);
  const started = await request(client, 'session:start', { cloneId, type });
  if (!started.ok || !started.livekit) throw new Error(JSON.stringify(started));
  return { userId, cloneId, client, session: started.session, livekit: started.livekit, room: `session-${started.session.id}` };
}

/** A voice agent connected to the gateway's `/agent` namespace with an agent token (not yet holding any session). */
export async function connectAgent(system: Pick<TestSystem, 'url' | 'config'>, agentId: string): Promise<Socket> {
  const token = await signAgentToken({ secret: system.config.JWT_SECRET, audience: system.config.JWT_AUDIENCE, agentId });
  return io(`${system.url}/agent`, { auth: { token }, transports: ['websocket'], forceNew: true });
}

/** Inserts a user with the given credits; returns its id. */
export function createUser(system: TestSystem, credits = '100.0000', role: 'user' | 'creator' = 'user'): Promise<string> {
  return createUserRow(system.database.db, credits, role);
}

/** Inserts a creator and a clone with the given per-minute rate; returns the clone and creator ids. */
export function createClone(
  system: TestSystem,
  rate = '1.0000',
  flags: { published?: boolean; active?: boolean } = {},
): Promise<{ cloneId: string; creatorId: string }> {
  return createCloneRow(system.database.db, rate, flags);
}

/**
 * `session:start`, and for a voice/video session the user's participant joining its room (a signed
 * `participant_joined` webhook), so it answers like a chat start: the session active from now.
 */
/** Starts a session; a voice/video one with the clone's agent and then the user joining its room (webhooks). */
export async function startInRoom(
  system: Pick<TestSystem, 'url'>,
  client: TestClient,
  payload: Parameters<ClientToServerEvents['session:start']>[0],
): Promise<Parameters<Parameters<ClientToServerEvents['session:start']>[1]>[0]> {
  const started = await request(client, 'session:start', payload);
  if (!started.ok || payload.type === 'chat') return started;
  const { id: sessionId, userId } = started.session;
  // a conversation: the clone's agent in the room, then the user (metered from the user's join)
  for (const identity of [`agent-${sessionId}`, userId]) {
    const status = await postWebhook(system.url, { event: 'participant_joined', room: `session-${sessionId}`, identity, joinedAtMs: Date.now() });
    if (status !== 200) throw new Error(`the join webhook was answered ${status}`);
  }
  const got = await request(client, 'session:get', { sessionId });
  if (!got.ok) throw new Error(JSON.stringify(got));
  return { ...started, session: got.session };
}

/**
 * The billing process's HTTP app (ledger, documents, console) on the system's database and config, not listening
 * (call `listen` or `inject`); silent unless a logger is given.
 */
export function billingAppOf(
  system: TestSystem,
  options: { documents?: BillingAppOptions['documents']; logger?: BillingAppOptions['logger'] } = {},
): FastifyInstance {
  return buildBillingApp({
    db: system.database.db,
    config: system.config,
    logger: options.logger ?? { info() {}, warn() {}, error() {} },
    registry: new Registry(),
    checks: {},
    failedJobs: () => system.worker.failedJobs(),
    // as the billing process does: an adjustment or a payment brings the live balance up at once
    onBalanceChanged: async (userId) => {
      await refreshBalance(system.database.db, system.store, userId);
    },
    ...(options.documents ? { documents: options.documents } : {}),
  });
}
