/**
 * `RedisCommandStats`: where Redis spent its time between `start()` and `stop()`, from INFO commandstats deltas —
 * calls and microseconds per command, over every master of a Redis Cluster (or the one server), and each master's
 * share of that time (a hot slot shows as one shard far above 1/N). Commands a Lua script calls are counted under
 * their own names as well as in the script's EVALSHA time. The Redis servers may be shared with other clients; their
 * commands count too. Replicas are not read: what they spend applying the replication stream is not a command's.
 */
import { keyspaceNodes, type RedisClient } from '#shared/live-state/redis-client.ts';
import type { Redis } from 'ioredis';
import type { ScriptWindow } from './redis-script-stats.ts';

export interface CommandCost {
  command: string;
  calls: number;
  usec: number;
  usecPerCall: number;
}

export interface ShardCost {
  /** host:port of the master. */
  node: string;
  usec: number;
  /** This master's share of every master's command time over the window. */
  share: number;
  /** Its share of the window spent running commands (one core's busy share, commands only). */
  busy: number;
}

export interface RedisWindow {
  seconds: number;
  /** Share of the window Redis spent running Lua scripts (EVALSHA/EVAL, the commands they call included), summed over masters. */
  scriptBusy: number;
  commands: CommandCost[];
  /** Microseconds of every command over the window, every master (not only the top commands listed). */
  totalUsec: number;
  /** One entry per master (one for a single server), busiest first. */
  shards: ShardCost[];
  /** EVALSHA time by script, where the scenario measured it (RedisScriptStats). */
  scripts?: ScriptWindow;
}

type Stats = Map<string, { calls: number; usec: number }>;

async function read(redis: Redis): Promise<Stats> {
  const stats: Stats = new Map();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (match) stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

const nodeName = (redis: Redis) => `${redis.options.host ?? '127.0.0.1'}:${redis.options.port ?? 6379}`;

export class RedisCommandStats {
  private before = new Map<string, Stats>();
  private nodes: Redis[] = [];
  private startedAt = performance.now();

  constructor(private readonly redis: RedisClient) {}

  async start(): Promise<void> {
    // the masters at the start: a failover during a window is not what the bench measures
    this.nodes = keyspaceNodes(this.redis);
    this.before = new Map(await Promise.all(this.nodes.map(async (node) => [nodeName(node), await read(node)] as const)));
    this.startedAt = performance.now();
  }

  /** The top commands by time over the window, each master's share, and the share of the window spent in Lua scripts. */
  async stop(top = 12): Promise<RedisWindow> {
    const after = await Promise.all(this.nodes.map(async (node) => [nodeName(node), await read(node)] as const));
    const seconds = (performance.now() - this.startedAt) / 1000;
    const byCommand = new Map<string, { calls: number; usec: number }>();
    const shardUsec: Array<{ node: string; usec: number }> = [];
    for (const [node, stats] of after) {
      const before = this.before.get(node) ?? new Map();
      let usecOfNode = 0;
      for (const [command, now] of stats) {
        const then = before.get(command) ?? { calls: 0, usec: 0 };
        const calls = now.calls - then.calls;
        if (calls <= 0) continue;
        const usec = now.usec - then.usec;
        usecOfNode += usec;
        const sum = byCommand.get(command) ?? { calls: 0, usec: 0 };
        sum.calls += calls;
        sum.usec += usec;
        byCommand.set(command, sum);
      }
      shardUsec.push({ node, usec: usecOfNode });
    }
    const commands: CommandCost[] = [...byCommand].map(([command, { calls, usec }]) => ({ command, calls, usec, usecPerCall: Math.round((usec / calls) * 10) / 10 }));
    commands.sort((a, b) => b.usec - a.usec);
    // EVALSHA/EVAL time includes the commands the scripts call (Tollgate's scripts and BullMQ's)
    const scriptUsec = commands.filter((c) => c.command === 'evalsha' || c.command === 'eval' || c.command === 'fcall').reduce((sum, c) => sum + c.usec, 0);
    const totalUsec = commands.reduce((sum, c) => sum + c.usec, 0);
    const shards = shardUsec
      .map(({ node, usec }) => ({ node, usec, share: totalUsec > 0 ? usec / totalUsec : 0, busy: usec / 1e6 / seconds }))
      .sort((a, b) => b.usec - a.usec);
    return { seconds, scriptBusy: scriptUsec / 1e6 / seconds, commands: commands.slice(0, top), totalUsec, shards };
  }
}
