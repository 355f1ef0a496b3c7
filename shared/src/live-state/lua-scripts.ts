/**
 * Loads the Lua scripts of shared/src/live-state/lua once, pastes `--@include name` lines from shared/src/live-state/lua/includes,
 * and registers each script on an ioredis client with `defineCommand`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isCluster, type RedisClient } from '#shared/live-state/redis-client.ts';

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
  'room-seen': 1,
  'voice-activity': 6,
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

/** A node's answer that it does not serve the slot (now): the script did not run there. */
const REDIRECTED = /^(MOVED|ASK) /;

/**
 * Runs a registered script; the one place raw KEYS/ARGV reach Redis. Under a cluster, a script auto-pipelined to a
 * node that lost its slot in a failover can be answered MOVED (ioredis follows a redirection only when a whole
 * pipeline was redirected alike): the slot map is refreshed and the script sent again, a few times.
 */
export async function runScript(redis: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
  if (keys.length !== SCRIPTS[name]) throw new Error(`${name} takes ${SCRIPTS[name]} keys, got ${keys.length}`);
  const fn = (redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[commandName(name)];
  if (!fn) throw new Error(`script ${name} is not registered on this client`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn.call(redis, ...keys, ...args);
    } catch (error) {
      if (!isCluster(redis) || attempt >= 5 || !(error instanceof Error) || !REDIRECTED.test(error.message)) throw error;
      redis.refreshSlotsCache();
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

/** Each script's SHA1 as Redis knows it (EVALSHA's first argument) → its name; for tools that read Redis's logs. */
export function scriptNamesBySha(): Map<string, ScriptName> {
  return new Map([...scriptSources()].map(([name, lua]) => [createHash('sha1').update(lua).digest('hex'), name]));
}
