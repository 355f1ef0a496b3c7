/**
 * The live-state scripts as one Redis Functions library (shared/src/live-state/lua-scripts.ts): a Redis without it
 * gets it on the first call, on every master; and since a library's definitions outlive a call, every call starts
 * from a clean run — nothing of one call (its user's sessions, its caller's settings) reaches the next.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { keyspaceNodes } from '#shared/live-state/redis-client.ts';
import { libraryName } from '#shared/live-state/lua-scripts.ts';
import { ScriptCode } from '#shared/live-state/script-codes.ts';
import { SessionStore, storeOptions } from '#shared/live-state/session-store.ts';
import { startSystem, type TestSystem } from '../support/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startSystem({ worker: false });
});
test.after(async () => {
  await system?.close();
});

const libraryOn = async (node: ReturnType<typeof keyspaceNodes>[number]) =>
  ((await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', libraryName())) as unknown[]).length;

async function chatSession(store: SessionStore, userId: string): Promise<string> {
  const sessionId = randomUUID();
  await store.applyBalance(userId, 1_000_000n, '1', []);
  const started = await store.start({ userId, sessionId, cloneId: randomUUID(), type: 'chat', rate: 10_000n, minStartMs: 0, maxOpen: 5 });
  assert.is(started.code, ScriptCode.ok);
  return sessionId;
}

test('a Redis without the library gets it on the first call, on every master, and the calls waiting for it go on', async () => {
  // the cluster client knows its masters once it has read the slots (after its first command)
  await system.store.applyBalance(randomUUID(), 1n, '1', []);
  const masters = keyspaceNodes(system.redis);
  // (the running gateway's own calls may find it missing first and load it: the same path)
  for (const node of masters) await node.call('FUNCTION', 'DELETE', libraryName());
  // users in every slot at once: each call finds the library missing until one load puts it on every master
  const users = Array.from({ length: 40 }, () => randomUUID());
  const outcomes = await Promise.all(users.map((userId) => system.store.applyBalance(userId, 5_000n, '1', [])));
  for (const outcome of outcomes) assert.is(outcome.budget, 5_000n);
  for (const node of masters) assert.is(await libraryOn(node), 1, `loaded on ${node.options.port}`);
});

test("one call's sessions never reach another user's answer, however the calls interleave", async () => {
  const withSession = randomUUID();
  const sessionId = await chatSession(system.store, withSession);
  const without = randomUUID();
  await system.store.applyBalance(without, 7_000n, '3', []);
  for (let round = 0; round < 20; round++) {
    const [a, b] = await Promise.all([system.store.advance(withSession, '', sessionId), system.store.advance(without)]);
    assert.ok(a.sessions.has(sessionId));
    assert.is(a.open.length, 1);
    assert.is(b.sessions.size, 0, "the other user's run saw no session");
    assert.is(b.open.length, 0);
    assert.is(b.changes.length, 0);
    assert.is(b.outbox.length, 0);
    assert.is(b.budget, 7_000n);
    assert.is(b.available, 7_000n);
  }
});

test("each call runs with its caller's settings, not the last caller's", async () => {
  const config = system.config;
  const strict = new SessionStore(system.redis, { ...storeOptions(config), messageRatePerMin: 1 });
  const lenient = new SessionStore(system.redis, { ...storeOptions(config), messageRatePerMin: 1000 });
  const strictUser = randomUUID();
  const lenientUser = randomUUID();
  const strictSession = await chatSession(strict, strictUser);
  const lenientSession = await chatSession(lenient, lenientUser);
  const send = (store: SessionStore, userId: string, sessionId: string) => store.addMessage(userId, sessionId, randomUUID(), randomUUID(), 'hello');
  // the limit counts per minute of Redis time: keep the three sends inside one minute
  if (Date.now() % 60_000 > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - (Date.now() % 60_000) + 100));
  // interleaved: each store's call follows one of the other's
  const codes: Array<[number, number]> = [];
  for (let i = 0; i < 3; i++) {
    const [s, l] = await Promise.all([send(strict, strictUser, strictSession), send(lenient, lenientUser, lenientSession)]);
    codes.push([s.code, l.code]);
  }
  assert.equal(codes, [
    [ScriptCode.ok, ScriptCode.ok],
    [ScriptCode.messageRate, ScriptCode.ok],
    [ScriptCode.messageRate, ScriptCode.ok],
  ]);
});

test.run();
