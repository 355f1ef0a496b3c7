/**
 * `npm start`: the whole system on sensible defaults.
 * - With Postgres and Redis reachable (DATABASE_URL / REDIS_URL, or their defaults on 127.0.0.1): migrates, then runs
 *   the gateway and the billing worker side by side with prefixed logs; if either exits, the other is stopped.
 * - With neither variable set and nothing answering on the default ports: an embedded Postgres (PGlite with pgvector,
 *   under `.tollgate/pgdata`) and/or a redis-server from PATH (under `.tollgate/redis`), migrated and seeded, with the
 *   gateway and the billing worker in this one process, and a banner with the URLs and demo sign-in tokens.
 * Ctrl-C stops everything.
 */
import { spawnSync } from 'node:child_process';
import { concurrently } from 'concurrently';
import { loadConfigOrExit, loadConfigWith, type Config } from '#shared/config/config.ts';
import { createDatabase, redactUrl } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { DEMO_ADMIN_ID, DEMO_CREATOR_ID, DEMO_USER_ID, seedDemoData } from './lib/seed-demo-data.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { embedMissingChunks } from './lib/embed-missing-chunks.ts';
import { startGateway } from '#gateway/gateway-runtime.ts';
import { startBilling } from '#billing/billing-runtime.ts';
import { postgresAnswers, redisAnswers, startEmbeddedPostgres, startLocalRedis, type LocalService } from './embedded/local-services.ts';
import { signUserToken } from './lib/sign-user-token.ts';

const config = loadConfigOrExit();
const embed = async (variable: 'DATABASE_URL' | 'REDIS_URL', answers: () => Promise<boolean>) =>
  config.EMBEDDED_SERVICES === 'always' ||
  (config.EMBEDDED_SERVICES === 'auto' && !config.explicitlySet.has(variable) && !(await answers()));
const embedPostgres = await embed('DATABASE_URL', () => postgresAnswers(config.DATABASE_URL));
const embedRedis = await embed('REDIS_URL', () => redisAnswers(config.REDIS_URL));

if (!embedPostgres && !embedRedis) await runProcesses();
else await runEmbedded();

async function runProcesses(): Promise<void> {
  const tsx = 'node --import tsx';
  const migrated = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], { stdio: 'inherit' });
  if (migrated.status !== 0) process.exit(migrated.status ?? 1);
  const { result } = concurrently(
    [
      { command: `${tsx} gateway/src/main.ts`, name: 'gateway', prefixColor: 'cyan' },
      { command: `${tsx} billing/src/main.ts`, name: 'billing', prefixColor: 'magenta' },
    ],
    { prefix: 'name', killOthersOn: ['failure', 'success'], killSignal: 'SIGTERM' },
  );
  // concurrently forwards SIGINT/SIGTERM to both processes; each closes in order and exits on its own.
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (stopping = true));
  result.then(
    () => process.exit(0),
    () => process.exit(stopping ? 0 : 1),
  );
}

async function runEmbedded(): Promise<void> {
  const services: LocalService[] = [];
  let postgres: LocalService | undefined;
  let redis: LocalService | undefined;
  try {
    if (embedPostgres) services.push((postgres = await startEmbeddedPostgres(`${config.DATA_DIR}/pgdata`)));
    if (embedRedis) services.push((redis = await startLocalRedis(`${config.DATA_DIR}/redis`)));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    await Promise.all(services.map((s) => s.close()));
    process.exit(1);
  }
  const effective = loadConfigWith({
    ...(postgres ? { DATABASE_URL: postgres.url } : {}),
    ...(redis ? { REDIS_URL: redis.url } : {}),
  });
  const logger = createLogger(effective, 'tollgate');
  // PGlite is one connection: everything in this process shares a pool of one
  const db = createDatabase(effective.DATABASE_URL, { max: postgres ? 1 : 10, applicationName: 'tollgate' });
  // what has started, closed in reverse order on a stop or a failed start (a redis-server must never be left behind)
  const running: Array<{ close(): Promise<void> }> = [...services, { close: () => db.destroy() }];
  const closeAll = async () => {
    for (const part of running.reverse()) await part.close().catch((error: unknown) => logger.warn({ err: error }, 'closing failed'));
  };
  try {
    await migrateToLatest(db);
    await seedDemoData(db);
    await embedMissingChunks(db, createEmbedder(effective));
    const billing = await startBilling(effective, db, logger.child({ name: 'billing' }));
    running.push(billing);
    const gateway = await startGateway(effective, db, logger.child({ name: 'gateway' }));
    running.push(gateway);
    await printBanner(effective, { postgres: Boolean(postgres), redis: Boolean(redis), gateway: gateway.port, billing: billing.port });
  } catch (error) {
    console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
    await closeAll();
    process.exit(1);
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await closeAll();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

async function printBanner(c: Config, parts: { postgres: boolean; redis: boolean; gateway: number; billing: number }): Promise<void> {
  const lines = [
    '',
    'Tollgate is running',
    `  database  ${parts.postgres ? `embedded PGlite (with pgvector) in ${c.DATA_DIR}/pgdata` : redactUrl(c.DATABASE_URL)}`,
    `  redis     ${parts.redis ? `redis-server from PATH in ${c.DATA_DIR}/redis (${c.REDIS_URL})` : c.REDIS_URL}`,
    `  chat      http://localhost:${parts.gateway}/`,
    `  console   http://localhost:${parts.billing}/`,
  ];
  if (c.NODE_ENV !== 'production') {
    const token = (userId: string) => signUserToken({ secret: c.JWT_SECRET, audience: c.JWT_AUDIENCE, userId, expiresIn: '12h' });
    lines.push(
      '  demo sign-in tokens (12 h, development only):',
      `    user     ${await token(DEMO_USER_ID)}`,
      `    creator  ${await token(DEMO_CREATOR_ID)}`,
      `    admin    ${await token(DEMO_ADMIN_ID)}`,
    );
  }
  lines.push('Ctrl-C stops everything.', '');
  console.log(lines.join('\n'));
}
