/**
 * Loads the Lua scripts of shared/src/live-state/lua once, pastes `--@include name` lines from shared/src/live-state/lua/includes,
 * and registers each script on an ioredis client with `defineCommand`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '#shared/live-state/redis-client.ts';

const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));

/** Each script and how many of its arguments are KEYS (all in one hash tag: one Redis Cluster slot per run). */
const SCRIPTS = {
  advance: 5,
  'session-start': 6,
  'session-transition': 6,
  'message-add': 9,
  'reply-add': 9,
  'balance-snapshot': 5,
  'presence-leave': 5,
  'presence-refresh': 1,
  'room-event': 7,
  'outbox-ack': 1,
  'agent-claim': 1,
  'connection-take': 1,
  'connection-renew': 1,
  'agent-release': 1,
  'mark-low-balance': 1,
  'schedule-due': 1,
  'claim-due': 2,
  'reschedule-due': 2,
} as const;

export type ScriptName = keyof typeof SCRIPTS;

let sources: Map<ScriptName, string> | undefined;

function readScript(name: string): string {
  const text = readFileSync(`${LUA_DIR}${name}.lua`, 'utf8');
  return text.replace(/^--@include ([\w-]+)\s*$/gm, (_, include: string) =>
    readFileSync(`${LUA_DIR}includes/${include}.lua`, 'utf8'),
  );
}

function scriptSources(): Map<ScriptName, string> {
  sources ??= new Map((Object.keys(SCRIPTS) as ScriptName[]).map((name) => [name, readScript(name)]));
  return sources;
}

/** Registers every script as a command named after its file (e.g. `session-start` → `tg_session_start`). */
export function registerScripts(redis: RedisClient): void {
  for (const [name, lua] of scriptSources()) {
    const command = commandName(name);
    if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: SCRIPTS[name], lua });
  }
}

export function commandName(name: ScriptName): string {
  return `tg_${name.replaceAll('-', '_')}`;
}

/** Runs a registered script; the one place raw KEYS/ARGV reach Redis. */
export function runScript(redis: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
  if (keys.length !== SCRIPTS[name]) throw new Error(`${name} takes ${SCRIPTS[name]} keys, got ${keys.length}`);
  const fn = (redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[commandName(name)];
  if (!fn) throw new Error(`script ${name} is not registered on this client`);
  return fn.call(redis, ...keys, ...args);
}

/** How many replicas must hold a write before it is acknowledged, and how long to wait for them (WAIT). */
export interface ReplicaAck {
  replicas: number;
  timeoutMs: number;
}

/**
 * Runs a registered script, then waits until `ack.replicas` replicas hold what it wrote (WAIT, on the same
 * connection and so, under a cluster, on the master of the script's slot: one pipeline goes to one node). Redis
 * replicates asynchronously: without this, an acknowledged write only the master held is lost when a replica takes
 * over. Fewer replicas in time: `NOREPLICAS` (a dependency failure, answered `unavailable`); the write itself stands,
 * and a retry of an idempotent script finds it and waits again. `ack.replicas` 0: runScript.
 */
export async function runScriptReplicated(redis: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>, ack: ReplicaAck): Promise<unknown> {
  if (ack.replicas <= 0) return runScript(redis, name, keys, args);
  if (keys.length !== SCRIPTS[name]) throw new Error(`${name} takes ${SCRIPTS[name]} keys, got ${keys.length}`);
  const pipeline = redis.pipeline();
  (pipeline as unknown as Record<string, (...a: Array<string | number>) => unknown>)[commandName(name)]!(...keys, ...args);
  pipeline.call('WAIT', ack.replicas, ack.timeoutMs);
  const [[scriptError, result], [waitError, confirmed]] = (await pipeline.exec()) as Array<[Error | null, unknown]> as [[Error | null, unknown], [Error | null, unknown]];
  if (scriptError) throw scriptError;
  if (waitError) throw waitError;
  if (Number(confirmed) < ack.replicas) {
    throw new Error(`NOREPLICAS ${String(confirmed)} of ${ack.replicas} replica(s) confirmed the write within ${ack.timeoutMs} ms`);
  }
  return result;
}

/** Each script's SHA1 as Redis knows it (EVALSHA's first argument) → its name; for tools that read Redis's logs. */
export function scriptNamesBySha(): Map<string, ScriptName> {
  return new Map([...scriptSources()].map(([name, lua]) => [createHash('sha1').update(lua).digest('hex'), name]));
}
