/**
 * `RedisCommandStats`: where Redis spent its time between `start()` and `stop()`, from INFO commandstats deltas —
 * calls and microseconds per command. Commands a Lua script calls are counted under their own names as well as in
 * the script's EVALSHA time. The Redis server may be shared with other clients; their commands count too.
 */
import type { Redis } from 'ioredis';
import type { ScriptWindow } from './redis-script-stats.ts';

export interface CommandCost {
  command: string;
  calls: number;
  usec: number;
  usecPerCall: number;
}

export interface RedisWindow {
  seconds: number;
  /** Share of the window Redis spent running Lua scripts (EVALSHA/EVAL, the commands they call included). */
  scriptBusy: number;
  commands: CommandCost[];
  /** Microseconds of every command over the window (not only the top ones listed). */
  totalUsec: number;
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

export class RedisCommandStats {
  private before: Stats = new Map();
  private startedAt = performance.now();

  constructor(private readonly redis: Redis) {}

  async start(): Promise<void> {
    this.before = await read(this.redis);
    this.startedAt = performance.now();
  }

  /** The top commands by time over the window, and the share of the window Redis spent running Lua scripts. */
  async stop(top = 12): Promise<RedisWindow> {
    const after = await read(this.redis);
    const seconds = (performance.now() - this.startedAt) / 1000;
    const commands: CommandCost[] = [];
    for (const [command, now] of after) {
      const then = this.before.get(command) ?? { calls: 0, usec: 0 };
      const calls = now.calls - then.calls;
      if (calls <= 0) continue;
      const usec = now.usec - then.usec;
      commands.push({ command, calls, usec, usecPerCall: Math.round((usec / calls) * 10) / 10 });
    }
    commands.sort((a, b) => b.usec - a.usec);
    // EVALSHA/EVAL time includes the commands the scripts call (Tollgate's scripts and BullMQ's)
    const scriptUsec = commands.filter((c) => c.command === 'evalsha' || c.command === 'eval').reduce((sum, c) => sum + c.usec, 0);
    const totalUsec = commands.reduce((sum, c) => sum + c.usec, 0);
    return { seconds, scriptBusy: scriptUsec / 1e6 / seconds, commands: commands.slice(0, top), totalUsec };
  }
}
