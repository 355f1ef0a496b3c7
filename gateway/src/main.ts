/** The gateway process: config, connections, the Gateway, and an orderly shutdown on SIGTERM/SIGINT. */
import { Redis } from 'ioredis';
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase } from '#shared/db/database.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { queuePrefix } from '#shared/redis/keys.ts';
import { createBillingQueue } from '#billing/billing-worker.ts';
import { Gateway } from './gateway.ts';
import { createReplyGenerator } from './replies/reply-generator.ts';

const config = loadConfigOrExit();
const logger = createLogger(config, 'gateway');
const db = createDatabase(config.DATABASE_URL);
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
const queueConnection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
const queue = createBillingQueue(queueConnection, queuePrefix(config.REDIS_PREFIX));
const gateway = new Gateway({ config, db, redis, queue, replies: createReplyGenerator(config), logger });

const port = await gateway.start();
logger.info({ port, replies: config.OPENAI_API_KEY ? 'openai' : 'offline' }, 'gateway listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'gateway stopping');
  await gateway.close({ replyDrainMs: 10_000 });
  await queue.close();
  await Promise.all([redis.quit(), queueConnection.quit()]);
  await db.destroy();
  logger.info('gateway stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
