import { Redis } from 'ioredis';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { loadConfig } from '#shared/config/config.ts';
import { randomUUID } from 'node:crypto';
const redis = new Redis();
const store = new SessionStore(redis, { ...storeOptions(loadConfig()), prefix: 'scratch' + Date.now() });
const userId = randomUUID();
const sessionId = randomUUID();
try {
  console.log((await store.applyBalance(userId, 1000000n, '1', [])).code);
  console.log((await store.start({ sessionId, userId, cloneId: randomUUID(), type: 'voice', rate: 10000n, minStartMs: 60000, maxOpen: 5 } as any)).code);
  console.log((await store.roomEvent(userId, sessionId, { id: 'e1', kind: 'joined', participantSid: 'p1', at: Date.now() })).code);
  console.log((await store.transition(userId, sessionId, 'end')).code);
} catch (e) { console.log(e); }
redis.disconnect();
