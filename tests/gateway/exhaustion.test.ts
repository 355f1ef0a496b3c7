import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { parseMoney } from '#shared/money/money.ts';
import type { BillingJobSink } from '#gateway/outbox/outbox-relay.ts';
import { createClone, createUser, request, startSystem, waitFor, type TestSystem, startInRoom } from '../support/system.ts';

// Due events are found here only by the actions themselves: the scheduler and the ticks are slowed right down.
let system: TestSystem;
let failNextAdds = 0;
let adds = 0;
test.before(async () => {
  system = await startSystem({
    env: { DUE_POLL_MS: '600000', METER_TICK_MS: '600000' },
    wrapJobs: (sink: BillingJobSink) => ({
      async addJobs(userId, jobs) {
        adds++;
        if (failNextAdds > 0) {
          failNextAdds--;
          throw new Error('injected: queue unavailable');
        }
        await sink.addJobs(userId, jobs);
      },
    }),
  });
});
test.after(async () => {
  await system?.close();
});

const code = (answer: { ok: boolean; error?: { code: string } }) => (answer.ok ? 'ok' : answer.error!.code);
const settledRow = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, `settlement of ${sessionId}`);

async function balanced(sessionIds: string[]): Promise<void> {
  const { rows } = await sql<{ total: string }>`select coalesce(sum(amount), 0)::text as total from ledger_entries where session_id in (${sql.join(sessionIds)}) group by session_id`.execute(system.database.db);
  assert.is(rows.length, sessionIds.length);
  for (const r of rows) assert.is(parseMoney(r.total), 0n);
}

test('credits run out while another session is paused: the active one ends, the paused one stays usable', async () => {
  const userId = await createUser(system, '0.3001');
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  const paused = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!paused.ok) throw new Error(JSON.stringify(paused));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const p = await request(client, 'session:pause', { sessionId: paused.session.id });
  assert.is(code(p), 'ok');
  const active = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!active.ok) throw new Error(JSON.stringify(active));
  await new Promise((resolve) => setTimeout(resolve, 400)); // well past exhaustion
  // the next action finds the exhaustion, ends the active session at its instant, and still answers
  const got = await request(client, 'session:get', { sessionId: active.session.id });
  assert.is(got.ok && got.session.status, 'ended');
  const stillPaused = await request(client, 'session:get', { sessionId: paused.session.id });
  assert.is(stillPaused.ok && stillPaused.session.status, 'paused');
  assert.is(code(await request(client, 'session:resume', { sessionId: paused.session.id })), 'insufficient_credits');
  assert.is(code(await request(client, 'session:end', { sessionId: paused.session.id })), 'ok');
  const [a, b] = [await settledRow(active.session.id), await settledRow(paused.session.id)];
  assert.is(a.end_reason, 'credits_exhausted');
  assert.is(parseMoney(a.total_cost) + parseMoney(b.total_cost), parseMoney('0.3001'));
  await balanced([a.id, b.id]);
  client.disconnect();
});

test('a refused action at the moment credits run out still queues the ending it applied', async () => {
  const userId = await createUser(system, '0.1000');
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  const started = await startInRoom(system, client, { cloneId, type: 'video' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  await new Promise((resolve) => setTimeout(resolve, 250));
  // the first thing to touch the user is a request that fails
  assert.is(code(await request(client, 'session:pause', { sessionId: randomUUID() })), 'not_found');
  const row = await settledRow(started.session.id);
  assert.is(row.end_reason, 'credits_exhausted');
  assert.is(row.total_cost, '0.1000');
  const user = await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '0.0000');
  client.disconnect();
});

test('an insufficient_credits start also commits the exhaustion it found', async () => {
  const userId = await createUser(system, '0.1000');
  const { cloneId } = await createClone(system, '60.0000');
  const client = await system.connect(userId);
  const started = await startInRoom(system, client, { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  await new Promise((resolve) => setTimeout(resolve, 250));
  assert.is(code(await startInRoom(system, client, { cloneId, type: 'voice' })), 'insufficient_credits');
  const row = await settledRow(started.session.id);
  assert.is(row.total_cost, '0.1000');
  client.disconnect();
});

test('a queue failure right after a change is retried: the start succeeds and is billed once', async () => {
  const userId = await createUser(system, '10.0000');
  const { cloneId } = await createClone(system, '1.0000');
  const client = await system.connect(userId);
  failNextAdds = 2;
  const before = adds;
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  assert.is(code(started), 'ok');
  // the answer does not wait for the queue (the start's facts are in the outbox): the relay retries behind it
  await system.gateway.relaysSettled();
  assert.ok(adds - before >= 3, 'retried after the failures');
  const id = started.ok ? started.session.id : '';
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', id).executeTakeFirst(), 5000, 'the session row');
  assert.is(code(await request(client, 'session:end', { sessionId: id })), 'ok');
  const row = await settledRow(id);
  await balanced([row.id]);
  client.disconnect();
});

test('the open-session cap answers rate_limited', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '0.0100');
  const client = await system.connect(userId);
  for (let i = 0; i < system.config.MAX_OPEN_SESSIONS; i++) {
    assert.is(code(await startInRoom(system, client, { cloneId, type: 'video' })), 'ok');
  }
  assert.is(code(await startInRoom(system, client, { cloneId, type: 'video' })), 'rate_limited');
  client.disconnect();
});

test.run();
