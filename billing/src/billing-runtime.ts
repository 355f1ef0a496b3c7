/**
 * The billing process's parts, started and stopped together: the BullMQ billing worker, the reconciler, the
 * knowledge-base ingestion worker, and on BILLING_PORT `GET /healthz`, `GET /metrics`, the billing staff API (`/api`)
 * and its web console (`/`). After each settlement (and adjustment) the user's live balance in Redis is refreshed.
 * Used by billing/src/main.ts, and by `npm start`'s embedded mode, which runs everything in one process.
 */
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { ingestQueuePrefix } from '#shared/live-state/keys.ts';
import { connectRedis } from '#shared/live-state/redis-client.ts';
import type { SettlementResult } from '#shared/contract/billing-jobs.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { enqueueDocument } from '#billing/ingest/ingest-queue.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { refreshBalance } from '#shared/live-state/balance-refresh.ts';
import { BillingWorker } from './billing-worker.ts';
import { coalesceByKey } from './coalesce-by-key.ts';
import { IngestWorker } from './ingest/ingest-worker.ts';
import { buildBillingApp } from './http/billing-app.ts';
import { Reconciler } from './reconcile/reconciler.ts';

export interface BillingRuntime {
  port: number;
  /** Stops taking jobs, lets running ones finish, closes HTTP and Redis. The database is the caller's. */
  close(): Promise<void>;
}

export async function startBilling(config: Config, db: Kysely<Database>, logger: Logger): Promise<BillingRuntime> {
  const redis = connectRedis(config);
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  const liveState = new SessionStore(redis, storeOptions(config));
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // Settlements of one user often finish together (the worker settles them as a batch): one refresh serves them all.
  const refreshUser = coalesceByKey(async (userId: string) => {
    await refreshBalance(db, liveState, userId);
  });
  const onSettled = (result: SettlementResult) => refreshUser(result.userId);
  const worker = new BillingWorker({ config, db, connection: redis, redisPrefix: config.REDIS_PREFIX, onSettled, registry, logger });
  const reconciler = new Reconciler({
    db,
    store: liveState,
    platformFeeRate: config.platformFeeRate,
    logger,
    intervalMs: config.RECONCILE_MS,
    endedGraceMs: config.RECONCILE_MS,
    onSettled,
    onReport: (report) => worker.metrics.messageCountMismatches.set(report.lostMessageSessions),
  });
  const ingestWorker = new IngestWorker({ config, db, embedder: createEmbedder(config), connection: redis, prefix: ingestQueuePrefix(config.REDIS_PREFIX), logger });
  const app = buildBillingApp({
    db,
    config,
    logger,
    registry,
    checks: {
      postgres: () => sql`select 1`.execute(db),
      redis: () => redis.ping(),
    },
    // an adjustment moved the user's credits: the live state takes the new balance, as after a settlement
    onBalanceChanged: (userId) => refreshUser(userId),
    failedJobs: () => worker.failedJobs(),
    documents: {
      uploadDir: config.UPLOAD_DIR,
      maxUploadBytes: config.MAX_UPLOAD_BYTES,
      enqueue: (documentId) => enqueueDocument(ingestWorker.queue, documentId),
    },
  });

  const close = async () => {
    await reconciler.close().catch(() => undefined);
    await ingestWorker.close();
    await worker.close();
    await app.close();
    await redis.quit();
  };
  try {
    // HTTP first, so /healthz can say 503 while a dependency is down.
    await app.listen({ port: config.BILLING_PORT, host: config.HOST });
    await Promise.all([worker.start(), ingestWorker.start()]);
    reconciler.start();
  } catch (error) {
    await close().catch(() => redis.disconnect());
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.BILLING_PORT;
  logger.info({ port, concurrency: config.BILLING_CONCURRENCY }, 'billing worker started');
  return { port, close };
}
