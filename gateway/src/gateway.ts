/**
 * The gateway process as an object: HTTP (health, metrics) and Socket.IO on one port, handshake
 * authentication, the client events, the due-event scheduler and the meter ticker. `start()` listens,
 * `close()` stops everything in order. Resources passed in (db, redis, queue) are closed by their owner.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Server } from 'socket.io';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'kysely';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import {
  clientPayloadSchemas,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SocketData,
} from '#shared/contract/socket-events.ts';
import { registerOpsRoutes } from '#shared/observability/ops-routes.ts';
import { TokenVerifier } from './auth/token-verifier.ts';
import { DueScheduler } from './meter/due-scheduler.ts';
import { MeterTicker } from './meter/meter-ticker.ts';
import type { ReplyGenerator } from './replies/reply-generator.ts';
import { QueueJobSink } from './sessions/queue-job-sink.ts';
import { SessionService, type BillingJobSink, type UserNotifier } from './sessions/session-service.ts';
import { SessionStore } from './sessions/session-store.ts';
import { bindClientEvents } from './transport/client-events.ts';

export interface GatewayOptions {
  config: Config;
  db: Kysely<Database>;
  /** Redis for live state (commands only; not a subscriber connection). */
  redis: Redis;
  /** The billing queue jobs go to. */
  queue: Queue;
  replies: ReplyGenerator;
  logger: Logger;
  /** Where billing jobs go; default: the `queue` above. */
  jobs?: BillingJobSink;
}

export type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

const userRoom = (userId: string) => `user:${userId}`;

/** Socket frames larger than this are refused (OWASP: cap frame size). */
const MAX_FRAME_BYTES = 64 * 1024;

export class Gateway {
  readonly app: FastifyInstance;
  readonly io: GatewayServer;
  readonly service: SessionService;
  readonly store: SessionStore;
  readonly registry = new Registry();
  private readonly scheduler: DueScheduler;
  private readonly ticker: MeterTicker;
  /** Disconnect handlers still running; close() waits for them. */
  private readonly disconnecting = new Set<Promise<void>>();

  constructor(private readonly options: GatewayOptions) {
    const { config, db, redis, queue, logger } = options;
    this.app = Fastify({ logger: false });
    this.io = new Server(this.app.server, {
      maxHttpBufferSize: MAX_FRAME_BYTES,
      cors: { origin: config.allowedOrigins },
      allowRequest: (req, callback) => {
        const origin = req.headers.origin;
        const allowed = config.allowedOrigins === true || origin === undefined || config.allowedOrigins.includes(origin);
        callback(null, allowed);
      },
    });
    const notifier: UserNotifier = {
      emit: (userId, event, ...args) => {
        this.io.to(userRoom(userId)).emit(event, ...args);
      },
    };
    this.store = new SessionStore(redis, {
      prefix: config.REDIS_PREFIX,
      idlePauseMs: config.IDLE_PAUSE_MS,
      pausedEndMs: config.PAUSED_END_MS,
      endedTtlMs: config.ENDED_STATE_TTL_MS,
    });
    this.service = new SessionService({
      config,
      db,
      store: this.store,
      jobs: options.jobs ?? new QueueJobSink(queue),
      notifier,
      replies: options.replies,
      logger,
    });
    this.scheduler = new DueScheduler({ store: this.store, service: this.service, logger, pollMs: config.DUE_POLL_MS });
    this.ticker = new MeterTicker({ service: this.service, logger, tickMs: config.METER_TICK_MS });

    const metrics = this.createMetrics();
    const verifier = new TokenVerifier({ secret: config.JWT_SECRET, audience: config.JWT_AUDIENCE });
    const schemas = clientPayloadSchemas({ maxMessageChars: config.MAX_MESSAGE_CHARS });

    this.io.use(async (socket, next) => {
      try {
        const userId = await verifier.verify(socket.handshake.auth?.token);
        const updated = await db
          .updateTable('user_profiles')
          .set({ last_login: new Date() })
          .where('id', '=', userId)
          .executeTakeFirst();
        if (updated.numUpdatedRows === 0n) throw new Error('unknown user');
        socket.data.userId = userId;
        next();
      } catch {
        next(new Error('unauthorized'));
      }
    });

    this.io.on('connection', (socket) => {
      const { userId } = socket.data;
      metrics.connections.inc();
      void socket.join(userRoom(userId));
      this.ticker.watch(userId);
      bindClientEvents(socket, {
        service: this.service,
        schemas,
        eventsPerSecond: config.EVENTS_PER_SECOND,
        eventBurst: config.EVENT_BURST,
        logger,
        eventsHandled: metrics.eventsHandled,
        onActivity: (id) => this.ticker.watch(id),
      });
      socket.on('disconnect', () => {
        metrics.connections.dec();
        const task = this.onDisconnect(userId).finally(() => this.disconnecting.delete(task));
        this.disconnecting.add(task);
      });
    });

    registerOpsRoutes(this.app, {
      registry: this.registry,
      checks: {
        postgres: () => sql`select 1`.execute(db),
        redis: () => redis.ping(),
      },
    });
  }

  /** Listens on config PORT (0 picks a free port) and starts the schedulers; returns the port. */
  async start(): Promise<number> {
    await this.app.listen({ port: this.options.config.PORT, host: this.options.config.HOST });
    this.scheduler.start();
    this.ticker.start();
    const address = this.app.server.address();
    return typeof address === 'object' && address ? address.port : this.options.config.PORT;
  }

  async close(): Promise<void> {
    await this.scheduler.close();
    await this.ticker.close();
    this.io.disconnectSockets(true);
    await Promise.allSettled([...this.disconnecting]);
    await this.service.close();
    await new Promise<void>((resolve) => this.io.close(() => resolve()));
    await this.app.close();
  }

  private async onDisconnect(userId: string): Promise<void> {
    try {
      const remaining = await this.io.in(userRoom(userId)).fetchSockets();
      if (remaining.length > 0) return;
      await this.service.pauseChatsOf(userId);
    } catch (error) {
      this.options.logger.error({ err: error, userId }, 'pausing on disconnect failed');
    }
  }

  private createMetrics() {
    const { registry } = this;
    const { db, queue } = this.options;
    collectDefaultMetrics({ register: registry });
    const connections = new Gauge({ name: 'gateway_connections', help: 'Open Socket.IO connections on this process', registers: [registry] });
    const eventsHandled = new Counter({
      name: 'gateway_events_total',
      help: 'Client events handled, by event and result code',
      labelNames: ['event', 'result'] as const,
      registers: [registry],
    });
    new Gauge({
      name: 'gateway_open_sessions',
      help: 'Sessions not yet ended, by status (from Postgres)',
      labelNames: ['status'] as const,
      registers: [registry],
      async collect() {
        const rows = await db
          .selectFrom('sessions')
          .select(['status', (eb) => eb.fn.countAll<string>().as('count')])
          .where('status', '!=', 'ended')
          .groupBy('status')
          .execute();
        this.reset();
        for (const status of ['active', 'paused']) {
          this.set({ status }, Number(rows.find((r) => r.status === status)?.count ?? 0));
        }
      },
    });
    new Gauge({
      name: 'gateway_billing_queue_depth',
      help: 'Billing jobs by state',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
    return { connections, eventsHandled };
  }
}
