// Scratch: what one due-scheduler advance costs Redis for a user with N active chat sessions, with and without
// checkpoints due (INFO commandstats usec per FCALL, or EVALSHA before, on an otherwise idle Redis). Not part of the suite.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfigWith } from '#shared/config/config.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { deleteKeys } from '../tests/support/processes.ts';

const users = Number(process.argv[2] ?? 200);
const perUser = Number(process.argv[3] ?? 10);
const rounds = Number(process.argv[4] ?? 20);
const redis = new Redis({ port: 6379, host: '127.0.0.1' });
const prefix = `luacost-${randomUUID().slice(0, 8)}`;
const config = loadConfigWith({ REDIS_PREFIX: prefix, IDLE_PAUSE_MS: '3600000', PAUSED_END_MS: '3600000', PRESENCE_TIMEOUT_MS: '3600000' });
const quiet = new SessionStore(redis, { ...storeOptions(config), checkpointMs: 1e12 });
const checkpointing = new SessionStore(redis, { ...storeOptions(config), checkpointMs: 1 });

async function evalUsec(): Promise<{ calls: number; usec: number; xadd: number }> {
  const info = await redis.info('commandstats');
  // EVALSHA before the scripts became functions, FCALL since
  const lines = [...info.matchAll(/cmdstat_(?:evalsha|fcall):calls=(\d+),usec=(\d+)/g)];
  const xadd = /cmdstat_xadd:calls=(\d+)/.exec(info);
  return { calls: lines.reduce((n, m) => n + Number(m[1]), 0), usec: lines.reduce((n, m) => n + Number(m[2]), 0), xadd: Number(xadd?.[1] ?? 0) };
}

const ids: string[] = [];
for (let u = 0; u < users; u++) {
  const userId = randomUUID();
  ids.push(userId);
  await quiet.applyBalance(userId, 10n ** 12n, '1', []);
  for (let i = 0; i < perUser; i++) {
    const outcome = await quiet.start({ userId, sessionId: randomUUID(), cloneId: randomUUID(), type: 'chat', rate: 600000n, minStartMs: 0, maxOpen: perUser });
    if (outcome.code !== 0) throw new Error(`start ${outcome.code}`);
  }
}

async function measure(label: string, store: SessionStore, force = false): Promise<void> {
  const before = await evalUsec();
  for (let r = 0; r < rounds; r++) {
    if (force) {
      // the stored due instant says "now": the run advances (not counted: the HSET is not an EVALSHA)
      await Promise.all(ids.map((id) => redis.hset(`${prefix}:u:{${id}}:acct`, 'dueAt', '0')));
    }
    await Promise.all(ids.map((id) => store.advance(id, '', '', true)));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const after = await evalUsec();
  const calls = after.calls - before.calls;
  console.log(`${label}: ${calls} calls, ${((after.usec - before.usec) / calls).toFixed(1)} µs each (${perUser} sessions per user), ${after.xadd - before.xadd} XADD`);
}

await measure('nothing due (quiet)', quiet);
await measure('advance, no checkpoint due', quiet, true);
await measure('advance, checkpoints due', checkpointing, true);
await measure('advance, no checkpoint due', quiet, true);
await measure('advance, checkpoints due', checkpointing, true);
await deleteKeys(redis, `${prefix}:*`);
redis.disconnect();
