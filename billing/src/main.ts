/**
 * The billing process: the BullMQ billing worker plus a small HTTP server with `GET /healthz` and
 * `GET /metrics`. It expects a migrated database (`npm start` migrates first). On SIGTERM/SIGINT it
 * stops taking jobs, lets running ones finish, then closes HTTP, Redis and Postgres, and exits 0
 * (1 if that takes longer than 15 s, e.g. with Redis unreachable).
 */
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase } from '#shared/db/database.ts';
import { BillingWorker } from './billing-worker.ts';

const HEALTH_TIMEOUT_MS = 2000;
/** Longest wait for running jobs and connections to close on SIGTERM. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

const config = loadConfigOrExit();
const logger = pino({ name: 'billing', level: config.LOG_LEVEL });

const db = createDatabase(config.DATABASE_URL, {
  applicationName: 'tollgate-billing',
  onIdleError: (error) => logger.warn({ err: error }, 'idle postgres connection failed'),
});
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));

const registry = new Registry();
collectDefaultMetrics({ register: registry });

const worker = new BillingWorker({
  config,
  db,
  connection: redis,
  prefix: `${config.REDIS_PREFIX}:bull`,
  // The lead wires this to the gateway's live state (billing/src/settled-hook.ts); settlements work without it.
  onSettled: undefined,
  registry,
  logger,
});

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function check(probe: () => Promise<unknown>): Promise<true | string> {
  try {
    await withTimeout(probe(), HEALTH_TIMEOUT_MS);
    return true;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

const app = Fastify({ loggerInstance: logger });

app.get('/healthz', async (_request, reply) => {
  const [postgres, redisOk] = await Promise.all([
    check(() => sql`SELECT 1`.execute(db)),
    check(() => redis.ping()),
  ]);
  if (postgres === true && redisOk === true) return { ok: true };
  const failed: Record<string, string> = {};
  if (postgres !== true) failed.postgres = postgres;
  if (redisOk !== true) failed.redis = redisOk;
  return reply.code(503).send({ ok: false, failed });
});

app.get('/metrics', async (_request, reply) => {
  reply.header('content-type', registry.contentType);
  return registry.metrics();
});

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'billing shutting down');
  // With Redis unreachable BullMQ cannot close cleanly; do not hang forever.
  setTimeout(() => {
    logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'billing shutdown timed out');
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS).unref();
  try {
    await worker.close();
    await app.close();
    if (redis.status === 'ready') await redis.quit();
    else redis.disconnect();
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
  // HTTP first: while Redis or Postgres is unreachable, /healthz says which.
  await app.listen({ port: config.BILLING_PORT, host: config.HOST });
  await worker.start();
  logger.info({ concurrency: config.BILLING_CONCURRENCY }, 'billing worker started');
} catch (error) {
  logger.error({ err: error }, 'billing failed to start');
  await worker.close().catch(() => undefined);
  await app.close().catch(() => undefined);
  redis.disconnect();
  await db.destroy().catch(() => undefined);
  process.exit(1);
}
