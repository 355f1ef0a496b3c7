/**
 * The billing process: the BullMQ billing worker and, on BILLING_PORT, `GET /healthz`, `GET /metrics`, the billing
 * staff API (`/api`) and its web console (`/`).
 * It expects a migrated database (`npm start` migrates first). After each settlement it hands the new balance to
 * the live state in Redis, so the user's available credits stop counting the session as unsettled.
 * It also ingests the clones' knowledge-base documents (the 'ingest' queue and its pending-row poller, ingest/).
 * SIGTERM/SIGINT: stop taking jobs, let running ones finish, close HTTP, Redis and Postgres, exit 0.
 */
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase } from '#shared/db/database.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { queuePrefix } from '#shared/redis/keys.ts';
import { SessionStore, storeOptions } from '#gateway/sessions/session-store.ts';
import { refreshBalance } from '#gateway/sessions/balance-refresh.ts';
import type { SettlementResult } from '#shared/contract/billing-jobs.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { BillingWorker } from './billing-worker.ts';
import { IngestWorker } from './ingest/ingest-worker.ts';
import { enqueueDocument } from '#shared/documents/ingest-queue.ts';
import { buildBillingApp } from './http/billing-app.ts';
import { Reconciler } from './reconcile/reconciler.ts';

/** Past this, a shutdown stuck on an unreachable Redis gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

const config = loadConfigOrExit();
const logger = createLogger(config, 'billing');

const db = createDatabase(config.DATABASE_URL, {
  applicationName: 'tollgate-billing',
  onIdleError: (error) => logger.warn({ err: error }, 'idle postgres connection failed'),
});
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
const liveState = new SessionStore(redis, storeOptions(config));

const registry = new Registry();
collectDefaultMetrics({ register: registry });

const onSettled = (result: SettlementResult) => refreshBalance(db, liveState, result.userId);
const worker = new BillingWorker({
  config,
  db,
  connection: redis,
  prefix: queuePrefix(config.REDIS_PREFIX),
  onSettled,
  registry,
  logger,
});
const reconciler = new Reconciler({
  db,
  store: liveState,
  platformFeeRate: config.platformFeeRate,
  logger,
  intervalMs: config.RECONCILE_MS,
  endedGraceMs: config.RECONCILE_MS,
  onSettled,
});

const ingestWorker = new IngestWorker({
  config,
  db,
  embedder: createEmbedder(config),
  connection: redis,
  prefix: queuePrefix(config.REDIS_PREFIX),
  logger,
});

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
  onBalanceChanged: (userId) => refreshBalance(db, liveState, userId),
  documents: {
    uploadDir: config.UPLOAD_DIR,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    enqueue: (documentId) => enqueueDocument(ingestWorker.queue, documentId),
  },
});

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'billing shutting down');
  const timer = setTimeout(() => {
    logger.error('billing shutdown timed out');
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  timer.unref();
  try {
    await reconciler.close();
    await ingestWorker.close();
    await worker.close();
    await app.close();
    await redis.quit();
    await db.destroy();
    logger.info('billing stopped');
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'billing shutdown failed');
    process.exit(1);
  }
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));

try {
  // HTTP first, so /healthz can say 503 while a dependency is down.
  await app.listen({ port: config.BILLING_PORT, host: config.HOST });
  await Promise.all([worker.start(), ingestWorker.start()]);
  reconciler.start();
  logger.info({ port: config.BILLING_PORT, concurrency: config.BILLING_CONCURRENCY }, 'billing worker started');
} catch (error) {
  logger.error({ err: error }, 'billing failed to start');
  await reconciler.close().catch(() => undefined);
  await ingestWorker.close().catch(() => undefined);
  await worker.close().catch(() => undefined);
  redis.disconnect();
  await db.destroy().catch(() => undefined);
  process.exit(1);
}
