// Scratch: Redis time per message-add and reply-add (INFO commandstats µs per FCALL — EVALSHA before the scripts
// became functions — and the commands the scripts call) and bytes on the wire per call (INFO stats net input/output),
// one chat session per user as in the churn scenario, idle Redis, 200 users sending concurrently. Not part of the suite.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfigWith } from '#shared/config/config.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { deleteKeys } from '../tests/support/processes.ts';

const redis = new Redis({ port: 6379, host: '127.0.0.1' });
const prefix = `luacost-${randomUUID().slice(0, 8)}`;
const store = new SessionStore(redis, storeOptions(loadConfigWith({ REDIS_PREFIX: prefix, MESSAGE_RATE_PER_MIN: '100000' })));
const N = 200;
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const users: Array<{ userId: string; sessionId: string }> = [];
for (let i = 0; i < N; i++) {
  const userId = randomUUID();
  const sessionId = randomUUID();
  await store.applyBalance(userId, 10n ** 12n, '1', []);
  await store.start({ userId, sessionId, cloneId: randomUUID(), type: 'chat', rate: 60000n, minStartMs: 0, maxOpen: 5 });
  users.push({ userId, sessionId });
}
async function stats() {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}
async function net() {
  const info = await redis.info('stats');
  const num = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0);
  return { in: num('total_net_input_bytes'), out: num('total_net_output_bytes') };
}
const content = 'How much does a minute of your time cost, and what do I get for it?';
const reply = 'A minute costs one credit. You get my full attention and answers drawn from my documents, with sources.';
for (let pass = 0; pass < 2; pass++) {
  for (const [label, call] of [
    ['message-add', (u: (typeof users)[0]) => store.addMessage(u.userId, u.sessionId, randomUUID(), randomUUID(), content, 'gw-1')],
    ['reply-add', (u: (typeof users)[0]) => store.addReply(u.userId, u.sessionId, { messageId: randomUUID(), content: reply, tokensUsed: 40, cost: 20n, citations: [] })],
  ] as const) {
    const [before, bytesBefore] = [await stats(), await net()];
    const t0 = performance.now();
    for (let r = 0; r < ROUNDS; r++) await Promise.all(users.map(call));
    const wall = performance.now() - t0;
    const [after, bytesAfter] = [await stats(), await net()];
    const calls = N * ROUNDS;
    const delta = (cmd: string) => (after.get(cmd)?.usec ?? 0) - (before.get(cmd)?.usec ?? 0);
    const ev = delta('fcall') + delta('evalsha');
    const inner = [...after]
      .filter(([name]) => name !== 'evalsha' && name !== 'fcall' && name !== 'info')
      .map(([name, s]) => [name, s.usec - (before.get(name)?.usec ?? 0), s.calls - (before.get(name)?.calls ?? 0)] as const)
      .filter(([, , c]) => c > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([name, usec, c]) => `${name} ${(c / calls).toFixed(1)}×${(usec / c).toFixed(1)}`)
      .join(', ');
    const sent = Math.round((bytesAfter.in - bytesBefore.in) / calls);
    const answered = Math.round((bytesAfter.out - bytesBefore.out) / calls);
    console.log(`${label}: ${(ev / calls).toFixed(1)} µs per call (client wall ${((wall * 1000) / calls).toFixed(1)} µs), ${sent} bytes sent, ${answered} answered; inside: ${inner}`);
  }
}
await deleteKeys(redis, `${prefix}:*`);
redis.disconnect();
