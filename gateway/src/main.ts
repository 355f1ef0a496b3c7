/** The gateway process: config, the database, the gateway runtime, and an orderly shutdown on SIGTERM/SIGINT. */
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase } from '#shared/db/database.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { startGateway } from './gateway-runtime.ts';

const config = loadConfigOrExit();
const logger = createLogger(config, 'gateway');
const db = createDatabase(config.DATABASE_URL);
const runtime = await startGateway(config, db, logger);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'gateway stopping');
  await runtime.close();
  await db.destroy();
  logger.info('gateway stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
