/**
 * `RedisScriptStats`: which Lua script costs Redis what, between `start()` and `stop()`. INFO commandstats counts
 * every function under one FCALL (Tollgate's scripts) and every script under one EVALSHA (BullMQ's); Redis's SLOWLOG,
 * with its threshold at 0, records each top-level command with its own duration and its first arguments — the
 * function's name, or the script's SHA1 (named from BullMQ's package). The log is read and emptied in one MULTI every `pollMs`, so no entry is read
 * twice or lost between a read and its reset; entries that overflowed the buffer between two reads would be counted
 * as `missed`. The threshold and length are restored at `stop()`. Logging every command costs Redis a little
 * memory traffic but not the commands' measured durations. Under a Redis Cluster every master's log is read.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { keyspaceNodes, type RedisClient } from '#shared/live-state/redis-client.ts';
import { scriptNamesByFunction } from '#shared/live-state/lua-scripts.ts';
import { ROOT } from './bench-process.ts';

export interface ScriptCost {
  script: string;
  calls: number;
  usec: number;
  usecPerCall: number;
}

export interface ScriptWindow {
  /** Logged FCALL and EVALSHA calls, by script, most expensive first. */
  scripts: ScriptCost[];
  /** Entries that left the ring buffer before they were read (the figures above are then a sample). */
  missed: number;
}

const LOG_LENGTH = 100_000;

let bullmqNames: Promise<Map<string, string>> | undefined;

/** BullMQ's scripts by SHA1: its package ships each one as a module exporting `{ name, content }`. */
function bullmqScriptNames(): Promise<Map<string, string>> {
  bullmqNames ??= (async () => {
    const dir = path.join(ROOT, 'node_modules/bullmq/dist/esm/scripts');
    const names = new Map<string, string>();
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'index.js')) {
      const module = (await import(pathToFileURL(path.join(dir, file)).href)) as Record<string, { name?: string; content?: string }>;
      for (const script of Object.values(module)) {
        if (script?.name && script.content) names.set(createHash('sha1').update(script.content).digest('hex'), `bullmq:${script.name}`);
      }
    }
    return names;
  })();
  return bullmqNames;
}

type SlowlogEntry = [id: number, at: number, usec: number, args: string[], ...rest: unknown[]];

/** One server's slow log, read and emptied every poll. */
class NodeLog {
  private lastId = -1;
  missed = 0;
  private restore: Array<[string, string]> = [];

  constructor(
    private readonly redis: Redis,
    private readonly costs: Map<string, { calls: number; usec: number }>,
  ) {}

  async start(): Promise<void> {
    const threshold = (await this.redis.config('GET', 'slowlog-log-slower-than')) as string[];
    const length = (await this.redis.config('GET', 'slowlog-max-len')) as string[];
    this.restore = [
      ['slowlog-log-slower-than', threshold[1] ?? '10000'],
      ['slowlog-max-len', length[1] ?? '128'],
    ];
    await this.redis.config('SET', 'slowlog-max-len', String(LOG_LENGTH));
    await this.redis.slowlog('RESET');
    await this.redis.config('SET', 'slowlog-log-slower-than', '0');
  }

  async stop(): Promise<void> {
    await this.read();
    for (const [name, value] of this.restore) await this.redis.config('SET', name, value);
    await this.redis.slowlog('RESET');
  }

  async read(): Promise<void> {
    const replies = await this.redis.multi().slowlog('GET', LOG_LENGTH).slowlog('RESET').exec();
    const fresh = (replies?.[0]?.[1] ?? []) as SlowlogEntry[]; // newest first
    if (fresh.length === 0) return;
    const oldest = fresh.at(-1)![0];
    // the poll's own MULTI/EXEC take ids too: only a full buffer means entries were lost
    if (fresh.length >= LOG_LENGTH && this.lastId >= 0) this.missed += oldest - this.lastId - 1;
    this.lastId = fresh[0]![0];
    for (const [, , usec, args] of fresh) {
      const command = String(args[0] ?? '').toLowerCase();
      if (command !== 'evalsha' && command !== 'fcall') continue;
      // a script's SHA1 (BullMQ's) or a function's name (Tollgate's)
      const script = command === 'evalsha' ? String(args[1] ?? '').toLowerCase() : String(args[1] ?? '');
      const cost = this.costs.get(script) ?? { calls: 0, usec: 0 };
      cost.calls += 1;
      cost.usec += usec;
      this.costs.set(script, cost);
    }
  }
}

/** Over every master of a cluster (or the one server). */
export class RedisScriptStats {
  private readonly costs = new Map<string, { calls: number; usec: number }>();
  private logs: NodeLog[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: RedisClient,
    private readonly pollMs = 200,
  ) {}

  async start(): Promise<void> {
    this.logs = keyspaceNodes(this.redis).map((node) => new NodeLog(node, this.costs));
    await Promise.all(this.logs.map((log) => log.start()));
    this.timer = setInterval(() => {
      this.reading = this.reading.then(() => Promise.all(this.logs.map((log) => log.read())).then(() => undefined));
    }, this.pollMs);
  }

  async stop(top = 12): Promise<ScriptWindow> {
    clearInterval(this.timer);
    await this.reading;
    await Promise.all(this.logs.map((log) => log.stop()));
    const names = new Map<string, string>([...(await bullmqScriptNames()), ...scriptNamesByFunction()]);
    const scripts = [...this.costs].map(([key, cost]) => ({
      script: names.get(key) ?? `unknown:${key.slice(0, 24)}`,
      calls: cost.calls,
      usec: cost.usec,
      usecPerCall: Math.round((cost.usec / cost.calls) * 10) / 10,
    }));
    scripts.sort((a, b) => b.usec - a.usec);
    return { scripts: scripts.slice(0, top), missed: this.logs.reduce((sum, log) => sum + log.missed, 0) };
  }
}
