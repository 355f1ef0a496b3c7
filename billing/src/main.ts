/**
 * The billing process (see billing-runtime.ts for what it runs). It expects a migrated database (`npm start`
 * migrates first). SIGTERM/SIGINT: stop taking jobs, let running ones finish, close HTTP, Redis and Postgres, exit 0.
 */
import { loadConfigOrExit } from '#shared/config/config.ts';
import { createDatabase } from '#shared/db/database.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { startBilling, type BillingRuntime } from './billing-runtime.ts';

/** Past this, a shutdown stuck on an unreachable Redis gives up and exits 1. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

const config = loadConfigOrExit();
const logger = createLogger(config, 'billing');
const db = createDatabase(config.DATABASE_URL, {
  applicationName: 'tollgate-billing',
  onIdleError: (error) => logger.warn({ err: error }, 'idle postgres connection failed'),
});

let runtime: BillingRuntime | undefined;
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
    await runtime?.close();
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
  runtime = await startBilling(config, db, logger);
} catch (error) {
  logger.error({ err: error }, 'billing failed to start');
  await db.destroy().catch(() => undefined);
  process.exit(1);
}
