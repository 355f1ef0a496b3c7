/**
 * `BenchEnvironment`: what one bench run owns — a throwaway, migrated database (`tollgate_bench_<pid>_<hex>`),
 * a unique Redis key prefix (each process group of a scenario gets `<prefix>-<label>` under it), the server
 * processes it spawns, and rows it seeds. `close()` stops its processes, deletes every Redis key under the prefix
 * and drops the database; it is safe to call twice (the signal handler and the normal end may both call it).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Kysely } from 'kysely';
import { configSchema } from '#shared/config/config.ts';
import { createDatabase, quoteIdentifier, withDatabase } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { connectRedis, scanKeys, type RedisClient } from '#shared/live-state/redis-client.ts';
import { freePort } from '../lib/free-port.ts';
import type { Database } from '#shared/db/schema.ts';
import { ROOT, spawnBenchProcess, type BenchProcess } from './bench-process.ts';

/** The JWT secret every bench process and the load generator share (bench-only, never a deployment's). */
export const BENCH_JWT_SECRET = 'bench-secret-0123456789-0123456789-abcdef';
export const BENCH_JWT_AUDIENCE = 'authenticated';

export interface BenchEnvironmentOptions {
  /** Postgres server (any database on it). Default BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres. */
  databaseUrl: string;
  /** Default BENCH_REDIS_URL or redis://127.0.0.1:6379. */
  redisUrl: string;
  /** A Redis Cluster instead (`host:port,...`, REDIS_CLUSTER_NODES): every process of the run uses it. */
  redisClusterNodes?: string;
  /** Spawn gateways and billing workers with `--cpu-prof` into this directory. */
  cpuProfileDir?: string;
  /** Put before the name of every process it starts (its CPU profile's file name): `--cluster`'s passes differ by it. */
  processNamePrefix?: string;
  /** Settings every gateway and billing worker gets (the bench's `--set`); a scenario's own override them. */
  settings?: Record<string, string>;
}

export interface StartOptions {
  /** Environment of this process on top of the bench defaults. */
  env?: Record<string, string>;
  /** Open-files limit wanted (raised with ulimit -n as far as the hard limit allows). */
  fdLimit?: number;
  /** Write a CPU profile (only when the environment has a profile directory). */
  profile?: boolean;
}

/** The parent's environment without any Tollgate setting, so only the bench's settings reach a child. */
function baseEnvironment(): Record<string, string> {
  const settings = new Set(Object.keys(configSchema.shape));
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !settings.has(key) && key !== 'NODE_OPTIONS') env[key] = value;
  }
  return env;
}

async function maintenance<T>(serverUrl: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl), application_name: 'tollgate-bench' });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export class BenchEnvironment {
  readonly prefix = `tgbench_${process.pid}_${randomBytes(4).toString('hex')}`;
  readonly databaseName = `tollgate_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  readonly databaseUrl: string;
  readonly redis: RedisClient;
  private dbHandle: Kysely<Database> | undefined;
  private created = false;
  private closed = false;
  private labels = 0;
  /** The server processes this environment started (the load process is the bench's, not an environment's). */
  private readonly started: BenchProcess[] = [];

  constructor(private readonly options: BenchEnvironmentOptions) {
    this.databaseUrl = withDatabase(options.databaseUrl, this.databaseName);
    this.redis = connectRedis({ REDIS_URL: options.redisUrl, REDIS_CLUSTER_NODES: options.redisClusterNodes }, { lazyConnect: true });
  }

  get db(): Kysely<Database> {
    if (!this.dbHandle) throw new Error('bench database not created yet');
    return this.dbHandle;
  }

  /** Creates and migrates the database and connects to Redis. */
  async open(): Promise<void> {
    // a single server waits for this (lazyConnect); a cluster client connects as it is made
    if (this.redis.status === 'wait') await this.redis.connect();
    else if (this.redis.status !== 'ready') await once(this.redis, 'ready');
    await maintenance(this.options.databaseUrl, (client) => client.query(`CREATE DATABASE ${quoteIdentifier(this.databaseName)}`));
    this.created = true;
    this.dbHandle = createDatabase(this.databaseUrl, { max: 10, applicationName: 'tollgate-bench' });
    await migrateToLatest(this.dbHandle);
    if (this.options.cpuProfileDir) mkdirSync(this.options.cpuProfileDir, { recursive: true });
  }

  /** A fresh key prefix under the run's prefix, for one group of processes (a scenario or one of its phases). */
  newPrefix(label: string): string {
    this.labels += 1;
    return `${this.prefix}-${label}${this.labels}`;
  }

  private processEnv(prefix: string, overrides: Record<string, string>): Record<string, string> {
    if (this.closed) throw new Error('the bench environment is closed');
    return {
      ...baseEnvironment(),
      NODE_ENV: 'test',
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: this.options.redisUrl,
      ...(this.options.redisClusterNodes ? { REDIS_CLUSTER_NODES: this.options.redisClusterNodes } : {}),
      REDIS_PREFIX: prefix,
      HOST: '127.0.0.1',
      JWT_SECRET: BENCH_JWT_SECRET,
      JWT_AUDIENCE: BENCH_JWT_AUDIENCE,
      LOG_LEVEL: 'warn',
      OPENAI_API_KEY: '',
      ...this.options.settings,
      ...overrides,
    };
  }

  async startGateway(name: string, prefix: string, options: StartOptions = {}): Promise<BenchProcess> {
    const port = await freePort();
    return this.track(spawnBenchProcess({
      name: this.processName(name),
      script: 'gateway/src/main.ts',
      port,
      env: this.processEnv(prefix, { ...options.env, PORT: String(port), BILLING_PORT: String(await freePort()) }),
      ...(options.fdLimit ? { fdLimit: options.fdLimit } : {}),
      ...(options.profile && this.options.cpuProfileDir ? { cpuProfileDir: this.options.cpuProfileDir } : {}),
    }));
  }

  async startBilling(name: string, prefix: string, options: StartOptions = {}): Promise<BenchProcess> {
    const port = await freePort();
    return this.track(spawnBenchProcess({
      name: this.processName(name),
      script: 'billing/src/main.ts',
      port,
      env: this.processEnv(prefix, { ...options.env, BILLING_PORT: String(port), PORT: String(await freePort()) }),
      ...(options.profile && this.options.cpuProfileDir ? { cpuProfileDir: this.options.cpuProfileDir } : {}),
    }));
  }

  /** The bare Socket.IO baseline server (scripts/bench/bare-server.ts). */
  async startBare(name: string, options: StartOptions = {}): Promise<BenchProcess> {
    if (this.closed) throw new Error('the bench environment is closed');
    const port = await freePort();
    return this.track(spawnBenchProcess({
      name: this.processName(name),
      script: path.relative(ROOT, path.join(import.meta.dirname, 'bare-server.ts')),
      port,
      env: { ...baseEnvironment(), PORT: String(port), HOST: '127.0.0.1' },
      ...(options.fdLimit ? { fdLimit: options.fdLimit } : {}),
    }));
  }

  private processName(name: string): string {
    return this.options.processNamePrefix ? `${this.options.processNamePrefix}-${name}` : name;
  }

  private async track(starting: Promise<BenchProcess>): Promise<BenchProcess> {
    const started = await starting;
    this.started.push(started);
    return started;
  }

  /** Inserts users with the given credits (decimal text, one value for all or one per user); returns their ids. */
  async createUsers(count: number, credits: string | ((index: number) => string)): Promise<string[]> {
    const ids = Array.from({ length: count }, () => randomUUID());
    for (let from = 0; from < count; from += 1000) {
      const rows = ids.slice(from, from + 1000).map((id, i) => ({
        id,
        email: `${id}@bench.local`,
        full_name: 'Bench User',
        role: 'user' as const,
        credits_remaining: typeof credits === 'string' ? credits : credits(from + i),
      }));
      await this.db.insertInto('user_profiles').values(rows).execute();
    }
    return ids;
  }

  /** Inserts a creator and a published clone with the given per-minute rate; returns the clone id. */
  async createClone(rate: string): Promise<string> {
    const [creatorId] = await this.createUsers(1, '0.0000');
    await this.db.updateTable('user_profiles').set({ role: 'creator' }).where('id', '=', creatorId!).execute();
    const cloneId = randomUUID();
    await this.db
      .insertInto('clones')
      .values({
        id: cloneId,
        creator_id: creatorId!,
        name: 'Dr. Bench',
        description: 'A clone for the benchmark',
        bio: 'Answers quickly.',
        expertise_areas: ['benchmarks', 'billing'],
        base_price: rate,
        personality_traits: JSON.stringify({ tone: 'brief' }),
        is_published: true,
        is_active: true,
      })
      .execute();
    return cloneId;
  }

  /** Deletes every key under one prefix (SCAN + UNLINK, master by master under a cluster). */
  async deleteKeys(pattern: string): Promise<void> {
    // one UNLINK per key: a cluster refuses one command over keys of several slots
    await scanKeys(this.redis, pattern, async (keys) => {
      await Promise.all(keys.map((key) => this.redis.unlink(key)));
    });
  }

  /** Stops every process, deletes the run's Redis keys, drops the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.started.map((p) => p.stop()));
    try {
      if (this.redis.status === 'ready') await this.deleteKeys(`${this.prefix}-*`);
    } finally {
      this.redis.disconnect();
      await this.dbHandle?.destroy().catch(() => undefined);
      if (this.created) {
        await maintenance(this.options.databaseUrl, (client) =>
          client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(this.databaseName)} WITH (FORCE)`),
        );
      }
    }
  }
}
