// Scratch: the fixed cost of a live-state script call (INFO commandstats usec per EVALSHA, idle Redis).
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { loadConfigWith } from '#shared/config/config.ts';
import { storeOptions } from '#shared/live-state/session-store.ts';

const redis = new Redis({ port: 6379, host: '127.0.0.1' });
const include = readFileSync('shared/src/live-state/lua/includes/live-state.lua', 'utf8');
const o = storeOptions(loadConfigWith({}));
const settings = JSON.stringify({ idleMs: o.idlePauseMs, pausedEndMs: o.pausedEndMs, endedTtlMs: o.endedTtlMs, presenceTimeoutMs: o.presenceTimeoutMs, presenceStaleMs: o.presenceStaleMs, checkpointMs: o.checkpointMs, messageRatePerMin: o.messageRatePerMin, joinTimeoutMs: o.joinTimeoutMs, agentJoinTimeoutMs: o.agentJoinTimeoutMs, voiceIdleMs: o.voiceIdleMs });
const keys = ['lc:{u}:acct', 'lc:{u}:unsettled', 'lc:{u}:open', 'lc:{u}:outbox', 'lc:{u}:presence'];
const args = ['lc:{u}:', settings, ''];
const variants: Record<string, string> = {
  'return 1': 'return 1',
  'decode settings only': 'local s = cjson.decode(ARGV[2]) return 1',
  'include, return 1': `${include}\nreturn 1`,
  'include, advance early exit': readFileSync('shared/src/live-state/lua/advance.lua', 'utf8').replace('--@include live-state', include),
};
const N = 20000;
async function usec() {
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'));
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}
for (let round = 0; round < 2; round++) {
  for (const [label, lua] of Object.entries(variants)) {
    const sha = (await redis.script('LOAD', lua)) as string;
    const before = await usec();
    for (let i = 0; i < N; i += 500) {
      const p = redis.pipeline();
      for (let j = 0; j < 500; j++) p.evalsha(sha, keys.length, ...keys, ...args, '', 'due');
      await p.exec();
    }
    const after = await usec();
    console.log(`${label.padEnd(30)} ${((after.usec - before.usec) / (after.calls - before.calls)).toFixed(2)} µs per call`);
  }
}
await redis.del(...keys);
redis.disconnect();
