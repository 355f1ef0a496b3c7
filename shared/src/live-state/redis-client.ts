/**
 * The one way every process connects to Redis: one server (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES,
 * `host:port,host:port,...`, any of its nodes; the rest are discovered). Both are ioredis clients with the same
 * commands; what differs — duplicating a connection, walking the keyspace — is here, so no caller asks which it has.
 * Under a cluster every key a script or a pipeline touches shares one hash tag (keys.ts), so each runs in one slot.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '#shared/config/config.ts';

export type RedisClient = Redis | Cluster;

export type RedisTarget = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>;

/** What a cluster client waits out before a command fails: a master's failover takes its node timeout and an election. */
const CLUSTER_OPTIONS: ClusterOptions = {
  scaleReads: 'master',
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 300,
  retryDelayOnTryAgain: 200,
  maxRedirections: 50,
  slotsRefreshTimeout: 2000,
};

/**
 * A connection: commands wait for a reconnect rather than fail after a few attempts (maxRetriesPerRequest: null);
 * under a cluster they follow a failover (MOVED, CLUSTERDOWN and TRYAGAIN retried for about 15 s).
 */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  const redisOptions: RedisOptions = { maxRetriesPerRequest: null, ...options };
  if (!target.REDIS_CLUSTER_NODES) return new Redis(target.REDIS_URL, redisOptions);
  const { enableAutoPipelining, ...perNode } = redisOptions;
  return new Cluster(parseClusterNodes(target.REDIS_CLUSTER_NODES), {
    ...CLUSTER_OPTIONS,
    enableAutoPipelining,
    redisOptions: withUrlAuth(target.REDIS_URL, perNode),
  });
}

/** A new connection like `client` (same server or cluster, same options), with `options` on top. */
export function duplicateRedis(client: RedisClient, options: RedisOptions = {}): RedisClient {
  if (client instanceof Cluster) {
    // auto-pipelining is the cluster client's own (per node), not each node connection's
    const { enableAutoPipelining, autoPipeliningIgnoredCommands, ...perNode } = options;
    return client.duplicate(undefined, {
      ...(enableAutoPipelining === undefined ? {} : { enableAutoPipelining }),
      ...(autoPipeliningIgnoredCommands === undefined ? {} : { autoPipeliningIgnoredCommands }),
      redisOptions: { ...client.options.redisOptions, ...perNode },
    });
  }
  return client.duplicate(options);
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** The connections that hold the keyspace: the cluster's masters, or the one server. For SCAN and INFO. */
export function keyspaceNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Every key matching `pattern`, node by node (SCAN, never KEYS), in batches handed to `each`. */
export async function scanKeys(client: RedisClient, pattern: string, each: (keys: string[]) => Promise<void>): Promise<void> {
  for (const node of keyspaceNodes(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await each(keys);
    } while (cursor !== '0');
  }
}

/** How many replicas must hold a write before it is acknowledged, and how long to wait for them (WAIT). */
export interface ReplicaAck {
  replicas: number;
  timeoutMs: number;
}

/** Answers of a node that no longer (or not yet) serves the slot: the command did not run there, ask again. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;

/**
 * Resolves once `ack.replicas` replicas hold every write this client has sent to the node serving `routeKey`'s slot
 * (WAIT covers the writes of its connection, and a client has one connection per node; a keyed command in the same
 * pipeline takes the WAIT to that node). Redis replicates asynchronously: an acknowledged write only the master held
 * is lost when a replica takes over. Fewer replicas in time: `NOREPLICAS` (a dependency failure, answered
 * `unavailable`) — the write stands, and an idempotent retry finds it and waits again. A node that no longer serves
 * the slot (a failover just happened) is asked again once the slot map is refreshed.
 */
export async function confirmReplicated(client: RedisClient, routeKey: string, ack: ReplicaAck): Promise<void> {
  if (ack.replicas <= 0) return;
  for (let attempt = 1; ; attempt++) {
    const [[routeError], [waitError, confirmed]] = (await client.pipeline().exists(routeKey).call('WAIT', ack.replicas, ack.timeoutMs).exec()) as [[Error | null, unknown], [Error | null, unknown]];
    if (routeError && REDIRECTED.test(routeError.message) && attempt < 10) {
      if (client instanceof Cluster) client.refreshSlotsCache();
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      continue;
    }
    if (routeError) throw routeError;
    if (waitError) throw waitError;
    if (Number(confirmed) < ack.replicas) {
      throw new Error(`NOREPLICAS ${String(confirmed)} of ${ack.replicas} replica(s) confirmed the write within ${ack.timeoutMs} ms`);
    }
    return;
  }
}

/** `host:port,host:port` → ioredis startup nodes. */
export function parseClusterNodes(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((entry) => entry.trim()).filter(Boolean).map((entry) => {
    const at = entry.lastIndexOf(':');
    if (at <= 0) throw new Error(`REDIS_CLUSTER_NODES: "${entry}" is not host:port`);
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  });
}

/** Under a cluster, REDIS_URL's user, password and TLS (rediss:) apply to every node. */
function withUrlAuth(url: string, options: RedisOptions): RedisOptions {
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    ...options,
  };
}
