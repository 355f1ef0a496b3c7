/**
 * The gateway process's parts, started and stopped together: its Redis connections, the billing queue it feeds
 * and the Gateway. Used by gateway/src/main.ts, and by `npm start`'s embedded mode (everything in one process).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { connectRedis } from '#shared/live-state/redis-client.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { Gateway } from './gateway.ts';
import { createReplyGenerator } from './replies/reply-generator.ts';

export interface GatewayRuntime {
  port: number;
  /** Graceful stop (clients reconnect elsewhere, replies drain); the database is the caller's. */
  close(): Promise<void>;
}

export async function startGateway(config: Config, db: Kysely<Database>, logger: Logger): Promise<GatewayRuntime> {
  const redis = connectRedis(config);
  const queueConnection = connectRedis(config);
  // ioredis reconnects by itself; without a listener each failed attempt is printed as an "Unhandled error event"
  for (const connection of [redis, queueConnection]) connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  const queue = new BillingQueues(queueConnection, config.REDIS_PREFIX);
  queue.on('error', (error) => logger.warn({ err: error }, 'billing queue error'));
  const gateway = new Gateway({ config, db, redis, queue, replies: createReplyGenerator(config), logger });
  const port = await gateway.start();
  logger.info({ port, replies: config.OPENAI_API_KEY ? 'openai' : 'offline' }, 'gateway listening');
  return {
    port,
    async close() {
      await gateway.close({ replyDrainMs: 10_000 });
      await queue.close();
      await Promise.all([redis.quit(), queueConnection.quit()]);
    },
  };
}
