/**
 * The system under the chaos run, all of it its own: a redis-server (AOF everysec) — or, `redisCluster`, a Redis
 * Cluster of 3 masters and 3 replicas with acknowledgements waiting for a replica (REDIS_ACK_REPLICAS=1) — and a
 * PostgreSQL cluster on spare ports in temporary directories, the database migrated, two gateways and two billing
 * workers as real processes. Each process keeps its ports across restarts, so clients reconnect to the same addresses.
 */
import { randomBytes } from 'node:crypto';
import { configSchema } from '#shared/config/config.ts';
import { createDatabase, ensureDatabaseExists, withDatabase } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { freePort } from '../lib/free-port.ts';
import { startPostgresServer, type PostgresServer } from '../lib/private-postgres.ts';
import { startRedisServer, type RedisServer } from '../lib/private-redis.ts';
import { startRedisCluster, type RedisCluster } from '../lib/private-redis-cluster.ts';
import { spawnService, waitHealthy, type ServiceProcess } from '../lib/service-process.ts';

export interface Slot {
  name: string;
  kind: 'gateway' | 'billing';
  port: number;
  url: string;
  process: ServiceProcess;
  /** Set while the run itself killed it on purpose. */
  killed: boolean;
}

export interface ChaosCluster {
  /** The one redis-server, or the Redis Cluster (`redisCluster` option). */
  redis: { server: RedisServer } | { cluster: RedisCluster };
  postgres: PostgresServer;
  databaseUrl: string;
  /** The settings every process runs with. */
  env: Record<string, string>;
  slots: Slot[];
  gateways(): Slot[];
  /** Processes that exited without being killed (a bug: logged with their output, then restarted). */
  crashes: string[];
  /** Starts that never became healthy and were retried. */
  slowStarts: string[];
  /** The warnings and errors every process of the run logged (pino JSON lines, killed processes' included). */
  problems(): string[];
  /** SIGKILLs the slot's process (it stays down until `restart`). */
  kill(slot: Slot): Promise<void>;
  /** SIGSTOP for `ms`, then SIGCONT: the process is frozen (a long GC pause, a stalled VM), not dead. */
  freeze(slot: Slot, ms: number): Promise<void>;
  /** Starts the slot's process again on its ports; resolves once healthy. */
  restart(slot: Slot): Promise<void>;
  close(): Promise<void>;
}

export interface ChaosClusterOptions {
  /** Settings on top of the chaos defaults. */
  env?: Record<string, string>;
  /** A Redis Cluster (3 masters + 3 replicas) instead of one redis-server. */
  redisCluster?: boolean;
  log(line: string): void;
}

/** Tight recovery timings, so a few minutes hold many crashes and recoveries. */
const CHAOS_SETTINGS: Record<string, string> = {
  NODE_ENV: 'test',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  OPENAI_API_KEY: '',
  AI_PRICE_PER_1K_TOKENS: '0.0200',
  METER_TICK_MS: '1000',
  DUE_POLL_MS: '50',
  CHECKPOINT_MS: '2000',
  LEASE_MS: '2000',
  // short job locks, so a worker frozen for a few seconds loses its running jobs to the other one (fault loop)
  BILLING_LOCK_MS: '2000',
  OUTBOX_GRACE_MS: '1000',
  RECONCILE_MS: '2000',
  PRESENCE_TIMEOUT_MS: '3000',
  MIN_START_SECONDS: '5',
  MAX_OPEN_SESSIONS: '3',
  MESSAGE_RATE_PER_MIN: '600',
  EVENTS_PER_SECOND: '200',
  EVENT_BURST: '400',
  IDLE_PAUSE_MS: '60000',
  PAUSED_END_MS: '120000',
};

export async function startChaosCluster(options: ChaosClusterOptions): Promise<ChaosCluster> {
  const [redis, postgres] = await Promise.all([
    options.redisCluster ? startRedisCluster().then((cluster) => ({ cluster })) : startRedisServer().then((server) => ({ server })),
    startPostgresServer(),
  ]);
  const redisSettings: Record<string, string> = 'cluster' in redis
    // the keyspace walk for outboxes whose index entry a failover took, at the run's pace
    ? { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: redis.cluster.nodeList, REDIS_ACK_REPLICAS: '1', OUTBOX_SCAN_MS: '5000' }
    : { REDIS_URL: redis.server.url };
  options.log(`${'cluster' in redis ? `redis cluster (3 masters + 3 replicas, AOF everysec, acks wait for a replica) on ${redis.cluster.nodeList}` : `redis-server (AOF everysec) on ${redis.server.port}`}, postgres on ${postgres.port}`);
  const databaseUrl = withDatabase(postgres.url, 'tollgate');
  await ensureDatabaseExists(databaseUrl);
  const db = createDatabase(databaseUrl, { max: 1, applicationName: 'tollgate-chaos-migrate' });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
  // only the chaos settings reach the processes, never the caller's Tollgate variables
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !(key in configSchema.shape)) base[key] = value;
  const env: Record<string, string> = {
    ...CHAOS_SETTINGS,
    DATABASE_URL: databaseUrl,
    ...redisSettings,
    REDIS_PREFIX: 'chaos',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ...options.env,
  };

  const slots: Slot[] = [];
  const crashes: string[] = [];
  const slowStarts: string[] = [];
  const everyProcess: ServiceProcess[] = [];
  const spawnSlot = async (slot: Omit<Slot, 'process' | 'killed'> & { otherPort: number }) => {
    const script = slot.kind === 'gateway' ? 'gateway/src/main.ts' : 'billing/src/main.ts';
    const ports = slot.kind === 'gateway' ? { PORT: slot.port, BILLING_PORT: slot.otherPort } : { BILLING_PORT: slot.port, PORT: slot.otherPort };
    // a start that overlapped a Redis or Postgres restart may never become healthy: start it again, as a supervisor
    // would (said in the log; three failed starts end the run)
    for (let attempt = 1; ; attempt++) {
      const proc = spawnService({
        name: slot.name,
        script,
        port: slot.port,
        env: { ...base, ...env, PORT: String(ports.PORT), BILLING_PORT: String(ports.BILLING_PORT) },
      });
      try {
        await waitHealthy(proc, 45_000);
      } catch (error) {
        if (attempt >= 3) throw error;
        options.log(`${slot.name} (pid ${proc.pid}) not healthy after 45 s (attempt ${attempt}); starting it again. Last output:\n${proc.output().slice(-1500)}`);
        slowStarts.push(slot.name);
        continue;
      }
      everyProcess.push(proc);
      void watch(slot.name, proc);
      return proc;
    }
  };
  // a process that dies on its own is a finding: say so with its last words, and bring it back as a supervisor would
  const watch = async (name: string, proc: ServiceProcess) => {
    const code = await proc.wait();
    const slot = slots.find((s) => s.name === name);
    if (!slot || slot.process !== proc || slot.killed || closing) return;
    crashes.push(name);
    options.log(`${name} (pid ${proc.pid}) EXITED ON ITS OWN (code ${code}); last output:\n${proc.output().slice(-3000)}`);
    slot.killed = true;
    try {
      slot.process = await spawnSlot({ ...slot, otherPort: otherPorts.get(slot.name)! });
    } finally {
      slot.killed = false;
    }
  };
  let closing = false;
  const otherPorts = new Map<string, number>();
  for (const [name, kind] of [['gateway-1', 'gateway'], ['gateway-2', 'gateway'], ['billing-1', 'billing'], ['billing-2', 'billing']] as const) {
    const port = await freePort();
    const otherPort = await freePort();
    otherPorts.set(name, otherPort);
    const proc = await spawnSlot({ name, kind, port, url: `http://127.0.0.1:${port}`, otherPort });
    slots.push({ name, kind, port, url: `http://127.0.0.1:${port}`, process: proc, killed: false });
  }
  options.log(`processes: ${slots.map((s) => `${s.name} :${s.port}`).join(', ')}`);

  return {
    redis,
    postgres,
    databaseUrl,
    env,
    slots,
    crashes,
    slowStarts,
    gateways: () => slots.filter((s) => s.kind === 'gateway'),
    problems: () => everyProcess.flatMap((p) => p.output().split('\n').filter((line) => /"level":(4|5|6)0/.test(line))),
    async freeze(slot, ms) {
      process.kill(slot.process.pid, 'SIGSTOP');
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
      } finally {
        process.kill(slot.process.pid, 'SIGCONT');
      }
    },
    async kill(slot) {
      slot.killed = true;
      await slot.process.kill('SIGKILL');
    },
    async restart(slot) {
      slot.killed = true;
      if (!slot.process.exited) await slot.process.kill('SIGKILL');
      slot.process = await spawnSlot({ ...slot, otherPort: otherPorts.get(slot.name)! });
      slot.killed = false;
    },
    async close() {
      closing = true;
      await Promise.all(slots.map((s) => s.process.stop()));
      await Promise.all(['cluster' in redis ? redis.cluster.close() : redis.server.close(), postgres.close()]);
    },
  };
}
