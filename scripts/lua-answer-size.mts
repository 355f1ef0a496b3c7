// Scratch: bytes on the wire per message-add and reply-add (INFO stats net input/output deltas), one session per
// user as in the churn scenario, idle Redis. Not part of the suite.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfigWith } from '#shared/config/config.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { deleteKeys } from '../tests/support/processes.ts';

const redis = new Redis({ port: 6379, host: '127.0.0.1' });
const prefix = `luasize-${randomUUID().slice(0, 8)}`;
const store = new SessionStore(redis, storeOptions(loadConfigWith({ REDIS_PREFIX: prefix })));
const N = 500;
const users: Array<{ userId: string; sessionId: string }> = [];
for (let i = 0; i < N; i++) {
  const userId = randomUUID();
  const sessionId = randomUUID();
  await store.applyBalance(userId, 10n ** 12n, '1', []);
  await store.start({ userId, sessionId, cloneId: randomUUID(), type: 'chat', rate: 60000n, minStartMs: 0, maxOpen: 5 });
  users.push({ userId, sessionId });
}
async function net() {
  const info = await redis.info('stats');
  const num = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0);
  return { in: num('total_net_input_bytes'), out: num('total_net_output_bytes') };
}
const content = 'How much does a minute of your time cost, and what do I get for it?';
const reply = 'A minute costs one credit. You get my full attention and answers drawn from my documents, with sources.';
for (const [label, call] of [
  ['message-add', (u: (typeof users)[0]) => store.addMessage(u.userId, u.sessionId, randomUUID(), randomUUID(), content, 'gw-1')],
  ['reply-add', (u: (typeof users)[0]) => store.addReply(u.userId, u.sessionId, { messageId: randomUUID(), content: reply, tokensUsed: 40, cost: 20n, citations: [] })],
] as const) {
  const before = await net();
  for (const u of users) await call(u);
  const after = await net();
  console.log(`${label}: ${Math.round((after.in - before.in) / N)} bytes sent, ${Math.round((after.out - before.out) / N)} bytes answered per call`);
}
await deleteKeys(redis, `${prefix}:*`);
redis.disconnect();
