/**
 * A private Redis Cluster for tests, the chaos run and the bench: Debian's redis-server, `masters` masters each with
 * `replicasPerMaster` replicas (3 + 3 by default), on spare ports with their own temporary directories, joined by
 * `redis-cli --cluster create`. AOF `everysec` as production runs it. `close()` kills every node and removes the
 * directories; the nodes also die with this process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './free-port.ts';
import { waitUntil } from './wait-until.ts';
import { redisAnswersOn, stopChild } from './private-redis.ts';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  /** Whether the node runs (it may have been killed). */
  readonly running: boolean;
  /** Kills the node (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on its port and directory: it rejoins the cluster (as a replica if its master role was taken). */
  restart(): Promise<void>;
}

export interface RedisCluster {
  nodes: ClusterNode[];
  /** `host:port,host:port,...` of every node: the form REDIS_CLUSTER_NODES takes. */
  nodeList: string;
  /** The ports of the nodes that are masters now, as the cluster reports them (asked of a running node). */
  masterPorts(): Promise<number[]>;
  /** Resolves once every slot is served and every running node agrees the cluster is ok. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** The ports of the master serving `key`'s slot and of its replicas, as the cluster reports them now. */
  nodesOfKey(key: string): Promise<{ master: number; replicas: number[] }>;
  /** SIGKILLs a master (the first one, or `port`'s) and resolves once its replica serves its slots: the failover. */
  killMaster(port?: number): Promise<{ port: number; failoverMs: number }>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** How long a master may be silent before its replica takes over (cluster-node-timeout). */
  nodeTimeoutMs?: number;
}

export async function startRedisCluster(options: ClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  const count = masters * (1 + replicas);
  const root = mkdtempSync(path.join(tmpdir(), 'tollgate-redis-cluster-'));
  const children = new Set<ChildProcess>();
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });

  const makeNode = async (index: number): Promise<ClusterNode> => {
    const [port, busPort] = [await freePort(), await freePort()];
    let child: ChildProcess | undefined;
    const launch = async () => {
      // the bus port is chosen apart: the default port + 10000 may be taken or out of range
      const started = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', root, '--save', '',
        '--appendonly', 'yes', '--appendfsync', 'everysec', '--appenddirname', `node-${index}-aof`,
        '--maxmemory-policy', 'noeviction',
        '--cluster-enabled', 'yes', '--cluster-config-file', `node-${index}.conf`, '--cluster-port', String(busPort),
        '--cluster-node-timeout', String(nodeTimeoutMs),
        // a replica takes over however long ago it last heard from its master (the default refuses a stale one)
        '--cluster-replica-validity-factor', '0',
      ], { stdio: 'ignore' });
      child = started;
      children.add(started);
      started.once('exit', () => children.delete(started));
      await waitUntil(() => redisAnswersOn(port), 10_000, `redis cluster node on ${port}`);
    };
    const kill = (signal: NodeJS.Signals = 'SIGKILL') => stopChild(child, signal);
    await launch();
    return {
      port,
      get running() {
        return child !== undefined && child.exitCode === null && child.signalCode === null;
      },
      kill,
      restart: async () => {
        await kill();
        await launch();
      },
    };
  };

  const nodes = await Promise.all(Array.from({ length: count }, (_, i) => makeNode(i)));
  const nodeList = nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  const clusterInfo = async (port: number): Promise<string> => {
    const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return `${String(await client.call('CLUSTER', 'INFO'))}\n${await client.info('replication')}`;
    } catch {
      return '';
    } finally {
      client.disconnect();
    }
  };
  const waitHealthy = async (timeoutMs = 30_000) => {
    await waitUntil(async () => {
      const infos = await Promise.all(nodes.filter((n) => n.running).map((n) => clusterInfo(n.port)));
      // ok everywhere, and every replica in sync with its master (else a failover would find nobody to promote)
      return infos.every((info) => info.includes('cluster_state:ok') && info.includes(`cluster_slots_ok:16384`) &&
        (!info.includes('role:slave') || info.includes('master_link_status:up')));
    }, timeoutMs, 'the redis cluster to be ok');
  };
  const close = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    await waitHealthy();
  } catch (error) {
    await close();
    throw error;
  }

  /** Asks a running node: each node of CLUSTER NODES, and for a KEYSLOT `key` its slot. */
  const ask = async <T>(question: (client: Redis) => Promise<T>): Promise<T> => {
    const alive = nodes.find((n) => n.running);
    if (!alive) throw new Error('no cluster node runs');
    const client = new Redis({ port: alive.port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await question(client);
    } finally {
      client.disconnect();
    }
  };
  // a line: <id> <ip:port@bus> <flags,...> <master id or -> <ping> <pong> <epoch> <link> <slot ranges...>
  const clusterNodes = (client: Redis) => client.call('CLUSTER', 'NODES').then((text) => String(text).trim().split('\n').map((line) => {
    const [id, address, flags, masterId, , , , , ...slots] = line.split(' ');
    const flagList = flags?.split(',') ?? [];
    return {
      id: id!,
      port: Number(/:(\d+)@/.exec(address!)?.[1]),
      master: flagList.includes('master'),
      failed: flagList.some((f) => f.startsWith('fail')),
      masterId: masterId!,
      ranges: slots.filter((s) => /^\d+(-\d+)?$/.test(s)).map((s) => s.split('-').map(Number) as [number, number?]),
    };
  }));
  // a master the others think down is flagged fail or fail?
  const masterPorts = async (): Promise<number[]> =>
    (await ask(clusterNodes)).filter((n) => n.master && !n.failed).map((n) => n.port);
  const nodesOfKey = (key: string) => ask(async (client) => {
    const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
    const all = await clusterNodes(client);
    const master = all.find((n) => n.master && !n.failed && n.ranges.some(([from, to]) => slot >= from && slot <= (to ?? from)));
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return { master: master.port, replicas: all.filter((n) => n.masterId === master.id && !n.failed).map((n) => n.port) };
  });
  const killMaster = async (port?: number) => {
    const victimPort = port ?? (await masterPorts())[0]!;
    const victim = nodes.find((n) => n.port === victimPort)!;
    const killedAt = Date.now();
    await victim.kill();
    await waitUntil(async () => !(await masterPorts()).includes(victimPort), 60_000, `a replica to take over from ${victimPort}`);
    await waitHealthy(60_000);
    return { port: victimPort, failoverMs: Date.now() - killedAt };
  };
  return { nodes, nodeList, masterPorts, nodesOfKey, waitHealthy, killMaster, close };
}
