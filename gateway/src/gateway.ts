/**
 * The gateway process as an object: HTTP (health, metrics) and Socket.IO on one port, the handshake
 * authentication, the client events, the due-event scheduler and the meter ticker. `start()` listens,
 * `close()` stops everything in order. Resources passed in (db, redis, queue) are closed by their owner.
 */
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { duplicateRedis, type RedisClient } from '#shared/live-state/redis-client.ts';
import type { BillingQueues } from '#shared/contract/billing-queue.ts';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { sql } from 'kysely';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import {
  clientPayloadSchemas,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SocketData,
  type WireSession,
} from '#shared/contract/socket-events.ts';
import { createHttpApp } from '#shared/http/http-app.ts';
import { registerOpsRoutes } from '#shared/observability/ops-routes.ts';
import { tokenVerifierFromConfig } from '#shared/auth/token-verifier-from-config.ts';
import { DueScheduler } from './meter/due-scheduler.ts';
import { MeterTicker } from './meter/meter-ticker.ts';
import type { ReplyGenerator } from './replies/reply-generator.ts';
import { knowledgeRetriever } from './replies/knowledge-retriever.ts';
import { warmTokenizer } from './replies/count-tokens.ts';
import { QueueJobSink } from './outbox/queue-job-sink.ts';
import { OutboxRelay, type BillingJobSink } from './outbox/outbox-relay.ts';
import { SessionService, type UserNotifier } from './sessions/session-service.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { bindClientEvents, type InterGatewayEvents } from './transport/client-events.ts';
import { ConnectionSlots } from './transport/connection-slots.ts';
import { LoginRecorder } from './transport/login-recorder.ts';
import { TokenRecheck } from './transport/token-recheck.ts';
import { handshake } from './transport/handshake.ts';
import { createGatewayMetrics, createWebhookSkewMetric } from './gateway-metrics.ts';
import { RoomPresenceCheck } from './livekit/room-presence-check.ts';
import { registerWebRoutes } from './web/web-routes.ts';
import { AGENT_NAMESPACE } from '#shared/contract/agent-events.ts';
import { ThrottledWarnings } from '#shared/observability/throttled-warnings.ts';
import { AgentClaims } from './livekit/agent-claims.ts';
import { roomWebhooks } from './livekit/room-webhooks.ts';
import { VoiceRooms } from './livekit/voice-rooms.ts';
import { agentRoom, bindAgentNamespace, type AgentNamespace } from './transport/agent-events.ts';
import { AgentDispatcher } from './livekit/agent-dispatcher.ts';
import { AdmissionControl } from './admission/admission-control.ts';

export interface GatewayOptions {
  config: Config;
  db: Kysely<Database>;
  /** Redis for live state (commands only; not a subscriber connection). */
  redis: RedisClient;
  /** The billing queue jobs go to (every partition). */
  queue: BillingQueues;
  replies: ReplyGenerator;
  logger: Logger;
  /** Where billing jobs go; default: the `queue` above. */
  jobs?: BillingJobSink;
  /** This process's id in presence records; default: a new random one. */
  gatewayId?: string;
  /** Replies generating at once on this gateway, the rest queued (SessionService; default 256). */
  maxRepliesInFlight?: number;
}

export type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents, InterGatewayEvents, SocketData>;

const userRoom = (userId: string) => `user:${userId}`;

/** A voice agent's claim on a session lasts this long unless renewed (agents renew at a third of it). */
const AGENT_CLAIM_MS = 30_000;

/** Socket frames larger than this are refused (OWASP: cap frame size). */
const MAX_FRAME_BYTES = 64 * 1024;

export class Gateway {
  /** HTTP (health, metrics, web, webhooks) on the gateway's port. */
  readonly app: FastifyInstance;
  /** The Socket.IO server on the same port. */
  readonly io: GatewayServer;
  /** What `/metrics` serves. */
  readonly registry = new Registry();
  /** This process's id in presence records. */
  readonly gatewayId: string;
  private readonly service: SessionService;
  private readonly store: SessionStore;
  private readonly relay: OutboxRelay;
  private readonly rooms: VoiceRooms;
  private readonly dispatcher: AgentDispatcher;
  private readonly scheduler: DueScheduler;
  private readonly roomCheck: RoomPresenceCheck;
  private readonly ticker: MeterTicker;
  /** Refuses new users and sessions while the gateway is past what it can serve. */
  private readonly admission: AdmissionControl;
  /** MAX_CONNECTIONS_PER_USER across gateways: a leased slot in Redis per socket. */
  private readonly slots: ConnectionSlots;
  /** Disconnects sockets whose token expired or whose user was deleted, every TOKEN_RECHECK_MS. */
  private readonly recheck: TokenRecheck;
  /** Checks each handshake's user exists and records last_login, batched (LoginRecorder). */
  private readonly logins: LoginRecorder;
  /** The Socket.IO adapter's own connection (Redis Streams: blocking reads). */
  private readonly adapterRedis: RedisClient;
  /**
   * The live-state scripts' own connection, auto-pipelined: the many scripts a busy gateway runs at once (a slot of
   * meter ticks, a burst of messages) go to Redis in one write instead of a write (a system call) each.
   */
  private readonly storeRedis: RedisClient;
  /** How many sockets of each user this process holds. */
  private readonly localSockets = new Map<string, number>();
  /** Connect and disconnect handlers still running; close() waits for them. */
  private readonly pending = new Set<Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Set by close(): sockets closing now will reconnect elsewhere, so their users' chats are not paused here. */
  private closing = false;
  private sweeping: Promise<unknown> | undefined;

  constructor(private readonly options: GatewayOptions) {
    const { config, db, redis, queue, logger } = options;
    this.gatewayId = options.gatewayId ?? randomUUID();
    // every error answer `{ error: { code, message } }`, request deadlines that never cut an upgraded websocket
    this.app = createHttpApp({
      limits: config,
      onServerError: (error, request) => logger.error({ err: error, method: request?.method, route: request?.routeOptions.url }, 'gateway http request failed'),
    });
    // every emit to a user's room is an XADD on this connection (and a recovery session a SET): those of one event
    // loop turn go out as one write. The adapter's blocking reads run on connections it duplicates from this one, so
    // XREAD is kept out of pipelines.
    this.adapterRedis = duplicateRedis(redis, { enableAutoPipelining: true, autoPipeliningIgnoredCommands: ['xread'] });
    this.io = new Server(this.app.server, {
      // any process can reach any user's sockets, and a client that drops briefly gets its missed events
      // blocking reads of 1 s (not 5): a closed gateway's stream reader lets go of its connection that soon after
      adapter: createAdapter(this.adapterRedis, { streamName: `${config.REDIS_PREFIX}:socket.io`, sessionKeyPrefix: `${config.REDIS_PREFIX}:sio:session:`, blockTimeInMs: 1000 }),
      connectionStateRecovery: { maxDisconnectionDuration: 2 * 60_000, skipMiddlewares: true },
      maxHttpBufferSize: MAX_FRAME_BYTES,
      cors: { origin: config.allowedOrigins },
      allowRequest: (req, callback) => {
        const origin = req.headers.origin;
        const allowed = config.allowedOrigins === true || origin === undefined || config.allowedOrigins.includes(origin);
        callback(null, allowed);
      },
    });
    const agents = this.io.of(AGENT_NAMESPACE) as unknown as AgentNamespace;
    const notifier: UserNotifier = {
      emit: (userId, event, ...args) => {
        this.io.to(userRoom(userId)).emit(event, ...args);
        // A session became active (a start, a resume, a LiveKit join). The gateways holding the user's sockets send the
        // meter ticks, so they must watch the user now, even if their last tick found nothing active: this one at once
        // (a server-side event never comes back to its sender), the others through the adapter.
        if (event === 'session:updated' && (args[0] as WireSession).status === 'active') {
          this.watchIfLocal(userId);
          this.io.serverSideEmit('user:active', userId);
        }
      },
      emitLocal: (userId, event, ...args) => {
        this.io.local.to(userRoom(userId)).emit(event, ...args);
      },
      emitAgent: (sessionId, event, ...args) => {
        agents.to(agentRoom(sessionId)).emit(event, ...args);
      },
    };
    this.rooms = new VoiceRooms({ config, redis, logger });
    const claims = new AgentClaims(redis, config.REDIS_PREFIX, AGENT_CLAIM_MS);
    this.storeRedis = duplicateRedis(redis, { enableAutoPipelining: true });
    // duplicates do not inherit listeners; ioredis reconnects by itself, the error is only worth a warning
    for (const connection of [this.adapterRedis, this.storeRedis]) connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
    this.store = new SessionStore(this.storeRedis, storeOptions(config));
    // Redis back from a restart, or a cluster node gone (a failover): the index writes of its last moments may be
    // lost while the outbox writes before them were kept, so the next sweep walks the keyspace for outboxes
    let readyBefore = false;
    this.storeRedis.on('ready', () => {
      if (readyBefore) this.store.requestOutboxWalk();
      readyBefore = true;
    });
    this.storeRedis.on('-node', () => this.store.requestOutboxWalk());
    this.relay = new OutboxRelay({ store: this.store, jobs: options.jobs ?? new QueueJobSink(queue, { lingerMs: config.RELAY_LINGER_MS }), logger, graceMs: config.OUTBOX_GRACE_MS });
    this.service = new SessionService({
      config,
      db,
      store: this.store,
      relay: this.relay,
      gatewayId: this.gatewayId,
      notifier,
      rooms: { rooms: this.rooms, roomChanged: (session) => this.dispatcher.roomChanged(session) },
      replies: options.replies,
      retrieve: knowledgeRetriever(db, createEmbedder(config), config.RAG_TOP_K),
      logger,
      ...(options.maxRepliesInFlight ? { maxRepliesInFlight: options.maxRepliesInFlight } : {}),
      onWebhookSkew: createWebhookSkewMetric(this.registry),
    });
    this.dispatcher = new AgentDispatcher({ redis, prefix: config.REDIS_PREFIX, agents, claims, rooms: this.rooms, store: this.store, logger });
    this.roomCheck = new RoomPresenceCheck({
      db,
      redis: this.storeRedis,
      prefix: config.REDIS_PREFIX,
      store: this.store,
      rooms: this.rooms,
      apply: (webhook) => this.service.roomEvent(webhook, true),
      intervalMs: config.ROOM_CHECK_MS,
      logger,
    });
    this.scheduler = new DueScheduler({
      store: this.store,
      service: this.service,
      logger,
      pollMs: config.DUE_POLL_MS,
      leaseMs: config.LEASE_MS,
    });
    this.ticker = new MeterTicker({
      service: this.service,
      logger,
      tickMs: config.METER_TICK_MS,
      // a sighting older than a tick interval (+250 ms) reads as a gateway that stopped seeing the user (a second tab
      // connecting elsewhere would pause their chats), and ticks between changes are no sightings: the heartbeat keeps
      // every watched user's sighting at least that fresh
      heartbeatMs: Math.max(50, Math.min(config.METER_TICK_MS, Math.floor(config.PRESENCE_TIMEOUT_MS / 5))),
    });

    this.admission = new AdmissionControl({
      limits: {
        eventLoopDelayMs: config.ADMISSION_EVENT_LOOP_MS,
        repliesWaiting: config.ADMISSION_REPLIES_WAITING,
        redisLatencyMs: config.ADMISSION_REDIS_MS,
      },
      sampleMs: config.ADMISSION_SAMPLE_MS,
      calmMs: config.ADMISSION_CALM_MS,
      retryMs: config.ADMISSION_RETRY_MS,
      repliesWaiting: () => this.service.replyLoad.queued,
      pingRedis: () => this.storeRedis.ping(),
      registry: this.registry,
    });
    const metrics = createGatewayMetrics({ registry: this.registry, db, queue, cacheMs: config.METRICS_CACHE_MS, replyLoad: () => this.service.replyLoad });
    const verifier = tokenVerifierFromConfig(config);
    const schemas = clientPayloadSchemas({ maxMessageChars: config.MAX_MESSAGE_CHARS });
    this.slots = new ConnectionSlots({ redis: this.storeRedis, prefix: config.REDIS_PREFIX, max: config.MAX_CONNECTIONS_PER_USER, leaseMs: config.CONNECTION_LEASE_MS, logger });
    this.logins = new LoginRecorder(db);
    this.recheck = new TokenRecheck({ sockets: () => this.io.of('/').sockets.values(), db, intervalMs: config.TOKEN_RECHECK_MS, logger });

    // a dependency that stops answering refuses every request: one line per kind every 10 s, not one per request
    const warnings = new ThrottledWarnings(logger);
    this.io.use(handshake({
      verifier,
      logins: this.logins,
      slots: this.slots,
      admission: this.admission,
      hasOpenSession: (userId) => this.store.hasOpenSession(userId),
      warnings,
    }));

    this.io.on('user:active', (userId) => this.watchIfLocal(userId));

    this.io.on('connection', (socket) => {
      const { userId } = socket.data;
      metrics.connections.inc();
      this.slots.hold(userId, socket.id);
      if (socket.recovered) {
        // restored by connection state recovery, which skips the handshake: its slot was given back when it dropped
        const retake = this.slots.take(userId, socket.id).then((taken) => {
          if (!taken) socket.disconnect(true);
        });
        this.track(retake, 'recovered connect', userId);
      }
      void socket.join(userRoom(userId));
      this.localSockets.set(userId, (this.localSockets.get(userId) ?? 0) + 1);
      this.ticker.watch(userId);
      // a sighting of the user on this gateway; chats left running by a gateway that died pause where it last saw them
      this.track(this.service.advance(userId, true).then(() => undefined), 'connect', userId);
      bindClientEvents(socket, {
        service: this.service,
        schemas,
        eventsPerSecond: config.EVENTS_PER_SECOND,
        eventBurst: config.EVENT_BURST,
        logger,
        eventsHandled: metrics.eventsHandled,
        internalAnswers: metrics.internalAnswers,
        warnings,
        admitStart: () => this.admission.admit('start'),
        onActivity: (id) => this.watchIfLocal(id),
      });
      socket.on('disconnect', () => {
        metrics.connections.dec();
        this.track(this.slots.release(userId, socket.id), 'connection slot release', userId);
        const left = (this.localSockets.get(userId) ?? 1) - 1;
        if (left > 0) {
          this.localSockets.set(userId, left);
          return;
        }
        this.localSockets.delete(userId);
        this.ticker.unwatch(userId);
        // On shutdown the client reconnects to another gateway; if none takes it, presence times out and its chats
        // pause where this gateway last saw it.
        if (!this.closing) this.track(this.service.leave(userId), 'disconnect', userId);
      });
    });

    bindAgentNamespace(agents, {
      service: this.service,
      store: this.store,
      rooms: this.rooms,
      claims,
      verifier,
      maxMessageChars: config.MAX_MESSAGE_CHARS,
      logger,
      eventsHandled: metrics.eventsHandled,
      internalAnswers: metrics.internalAnswers,
      warnings,
    });
    void this.app.register(roomWebhooks, {
      apiKey: config.LIVEKIT_API_KEY,
      apiSecret: config.LIVEKIT_API_SECRET,
      logger,
      apply: (webhook) => this.service.roomEvent(webhook),
    });
    registerWebRoutes(this.app, { config, db });
    registerOpsRoutes(this.app, {
      registry: this.registry,
      metricsToken: config.METRICS_TOKEN,
      readiness: () => this.admission.readiness(),
      checks: {
        postgres: () => sql`select 1`.execute(db),
        redis: () => redis.ping(),
      },
    });
  }

  /**
   * One sweep (at start and every RECONCILE_MS): relays the billing facts dead processes left in the users' outboxes
   * (older than OUTBOX_GRACE_MS) and offers occupied rooms without an agent to the voice agents again. Resolves with
   * how many facts were relayed and sessions offered; rejects when either failed.
   */
  async sweep(): Promise<{ relayed: number; offered: number }> {
    const [relayed, offered] = await Promise.all([this.relay.sweep(), this.dispatcher.sweep()]);
    return { relayed, offered };
  }

  /**
   * Resolves when the relays running in the background (answers that did not wait for the queue) have finished:
   * queued, or given up with their facts left in the outbox for the sweep.
   */
  relaysSettled(): Promise<void> {
    return this.service.relaysSettled();
  }

  /** Whether this gateway ticks the user's meter now (it holds their sockets and one of their sessions is active). */
  isMetering(userId: string): boolean {
    return this.ticker.slotOf(userId) !== undefined;
  }

  /** Meters the user from this gateway if it holds one of their sockets (ticks go to local sockets only). */
  private watchIfLocal(userId: string): void {
    if (this.localSockets.has(userId)) this.ticker.watch(userId);
  }

  /** Listens on config PORT (0 picks a free port) and starts the schedulers; returns the port. */
  async start(): Promise<number> {
    // before any socket is here to be stalled by it
    warmTokenizer();
    await this.app.listen({ port: this.options.config.PORT, host: this.options.config.HOST });
    this.scheduler.start();
    this.ticker.start();
    this.admission.start();
    this.slots.start();
    this.recheck.start();
    this.roomCheck.start();
    // what a process that died before relaying left in the outboxes; one sweep at a time
    const sweep = () => {
      this.sweeping ??= this.sweep()
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'sweep failed'))
        .finally(() => (this.sweeping = undefined));
    };
    sweep();
    this.sweepTimer = setInterval(sweep, this.options.config.RECONCILE_MS);
    const address = this.app.server.address();
    return typeof address === 'object' && address ? address.port : this.options.config.PORT;
  }

  /**
   * Graceful stop: stop accepting, close every client's transport so it reconnects (to another gateway behind the
   * load balancer) without pausing its sessions, let replies in flight finish, relay the outbox, stop.
   */
  async close(options: { replyDrainMs?: number } = {}): Promise<void> {
    this.closing = true;
    clearInterval(this.sweepTimer);
    this.admission.close();
    await this.sweeping;
    await Promise.all([this.recheck.close(), this.slots.close(), this.roomCheck.close()]);
    await this.scheduler.close();
    await this.ticker.close();
    const closed = new Promise<void>((resolve) => this.io.close(() => resolve()));
    await Promise.allSettled([...this.pending]);
    await this.service.close(options.replyDrainMs ?? 0);
    await this.relay.sweep(0).catch((error: unknown) => this.options.logger.error({ err: error }, 'final outbox relay failed'));
    await closed;
    await this.app.close();
    // QUIT, not a hard disconnect: the adapter fires commands without handling their answers (closing the sockets
    // just now persisted their recovery sessions with a SET) — those are answered first instead of rejected unhandled
    // (on a Redis Cluster the SET may still be opening its node's connection). Its blocking reads use clients of
    // their own, so nothing here waits for them.
    await this.adapterRedis.quit().catch(() => this.adapterRedis.disconnect());
    await this.storeRedis.quit().catch(() => this.storeRedis.disconnect());
  }

  /** Runs a connect/disconnect task that close() waits for; its failure is logged, never thrown. */
  private track(task: Promise<void>, what: string, userId: string): void {
    const tracked = task
      .catch((error: unknown) => this.options.logger.error({ err: error, userId }, `${what} handling failed`))
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}
