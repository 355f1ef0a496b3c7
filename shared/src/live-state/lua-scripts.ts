/**
 * The Lua scripts of shared/src/live-state/lua as one Redis Functions library: each `<name>.lua` is the body of a
 * function `tg_<version>_<name>` (called with KEYS and ARGV as a script is), and the files of lua/includes are
 * defined once at the head of the library. A script run with EVALSHA re-creates everything its included core
 * defines on every call (~40 closures and a settings decode, ~13 µs of Redis per call, measured in
 * docs/performance.md); a library's definitions are made once per load. `<version>` is a hash of the library's text,
 * so processes of two releases sharing a Redis during a rolling deploy each call their own functions.
 *
 * The library is loaded lazily: a call answered "Function not found" (a new Redis, a restarted one without
 * persistence, a node new to a cluster) loads it on every master and runs again.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isCluster, keyspaceNodes, type RedisClient } from '#shared/live-state/redis-client.ts';

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

/**
 * Scripts that only free memory (XDEL, DEL) run on a Redis at its maxmemory, as EVAL scripts did; every other function
 * is refused there before it starts (Redis's rule for a function without flags), so none stops half way.
 */
const ALLOW_OOM: ReadonlySet<ScriptName> = new Set(['outbox-ack', 'agent-release']);

interface Library {
  /** The text FUNCTION LOAD takes. */
  source: string;
  /** tollgate_<version>: the library's name in FUNCTION LIST and FUNCTION DELETE. */
  name: string;
  /** tg_<version>_ : what every function name of this library starts with. */
  functionPrefix: string;
}

let library: Library | undefined;

/** Stands for tg_<version>_ in the library's text until the version (a hash of that text) is known. */
const VERSION = '@TG_FUNCTION_PREFIX@';

function buildLibrary(): Library {
  const includes = readdirSync(`${LUA_DIR}includes`)
    .filter((file) => file.endsWith('.lua'))
    .sort()
    .map((file) => readFileSync(`${LUA_DIR}includes/${file}`, 'utf8'));
  const functions = (Object.keys(SCRIPTS) as ScriptName[]).map((name) => {
    const body = readFileSync(`${LUA_DIR}${name}.lua`, 'utf8');
    const flags = ALLOW_OOM.has(name) ? `'allow-oom'` : '';
    return `redis.register_function{ function_name = '${VERSION}${snake(name)}', flags = { ${flags} }, callback = function(KEYS, ARGV)\n${body}\nend }`;
  });
  // the version is a hash of the whole library but the names that carry it
  const text = [...includes, ...functions].join('\n');
  const version = createHash('sha1').update(text).digest('hex').slice(0, 12);
  const functionPrefix = `tg_${version}_`;
  const name = `tollgate_${version}`;
  return { source: `#!lua name=${name}\n${text.replaceAll(VERSION, functionPrefix)}`, name, functionPrefix };
}

function currentLibrary(): Library {
  library ??= buildLibrary();
  return library;
}

const snake = (name: string) => name.replaceAll('-', '_');

/** The library of this release's scripts, as Redis names it. */
export function libraryName(): string {
  return currentLibrary().name;
}

/** The function a script runs as (e.g. `message-add` → `tg_<version>_message_add`). */
export function functionName(name: ScriptName): string {
  return `${currentLibrary().functionPrefix}${snake(name)}`;
}

/** Loads the library on every master (REPLACE: loading the same text twice, from two processes, is harmless). */
async function loadLibrary(redis: RedisClient): Promise<void> {
  const { source } = currentLibrary();
  await Promise.all(keyspaceNodes(redis).map((node) => node.call('FUNCTION', 'LOAD', 'REPLACE', source)));
}

/** One load at a time per client: the first calls after a start all find the library missing. */
const loading = new WeakMap<RedisClient, Promise<void>>();
/** Why the last load failed, per client: told with a call that never found the library. */
const loadFailures = new WeakMap<RedisClient, unknown>();

function ensureLoaded(redis: RedisClient): Promise<void> {
  let pending = loading.get(redis);
  if (!pending) {
    pending = loadLibrary(redis).finally(() => loading.delete(redis));
    loading.set(redis, pending);
  }
  return pending;
}

/** A node's answer that it does not serve the slot (now): the script did not run there. */
const REDIRECTED = /^(MOVED|ASK) /;
const NOT_LOADED = /Function not found/;
/** A Redis older than 7.0 has no Functions. */
const NO_FUNCTIONS = /unknown command .?fcall/i;

/**
 * Runs a script; the one place raw KEYS/ARGV reach Redis. Under a cluster, a call auto-pipelined to a node that lost
 * its slot in a failover can be answered MOVED (ioredis follows a redirection only when a whole pipeline was
 * redirected alike): the slot map is refreshed and the call sent again, a few times. A node without the library
 * gets it, and the call is sent again.
 */
export async function runScript(redis: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
  if (keys.length !== SCRIPTS[name]) throw new Error(`${name} takes ${SCRIPTS[name]} keys, got ${keys.length}`);
  const fn = functionName(name);
  for (let attempt = 1; ; attempt++) {
    try {
      return await redis.fcall(fn, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      if (NO_FUNCTIONS.test(error.message)) throw new Error(`Redis 7.0 or later is needed: Tollgate's live-state scripts are Redis Functions (${error.message})`);
      if (attempt >= 5) {
        const failure = loadFailures.get(redis);
        if (NOT_LOADED.test(error.message) && failure instanceof Error) {
          throw new Error(`${error.message} (loading the library failed: ${failure.message})`, { cause: failure });
        }
        throw error;
      }
      if (NOT_LOADED.test(error.message)) {
        // a load that fails (a node failing over, its role not yet known here) is tried again by the next attempt
        await ensureLoaded(redis).catch(async (failure: unknown) => {
          loadFailures.set(redis, failure);
          if (isCluster(redis)) redis.refreshSlotsCache();
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        });
      } else if (isCluster(redis) && REDIRECTED.test(error.message)) {
        redis.refreshSlotsCache();
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      } else {
        throw error;
      }
    }
  }
}

/** Each function's name as Redis's logs show it (FCALL's first argument) → its script; for tools that read them. */
export function scriptNamesByFunction(): Map<string, ScriptName> {
  return new Map((Object.keys(SCRIPTS) as ScriptName[]).map((name) => [functionName(name), name]));
}
