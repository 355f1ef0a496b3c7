/**
 * Facts acknowledged but never written are reported, never silently absent: a billing job that failed for good (its
 * session named), and a settled session whose message_count differs from the messages stored for it. Both fail the
 * reconciliation; the reconciler's periodic run finds the second too (the billing process counts it in /metrics).
 */
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { billingJobId } from '#shared/contract/billing-jobs.ts';
import { createParties, messageJob, sessionHeader } from '../billing/fixtures.ts';
import { billingAppOf, connectedUserAndClone, nextEvent, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { RECONCILE_MS: '1000' } });
});
test.after(async () => {
  await system?.close();
});

async function reconciliation(): Promise<{ ok: boolean; failedJobs: { id: string; sessionIds: string[]; failedReason: string }[]; messageCountMismatches: unknown[] }> {
  const app = billingAppOf(system);
  try {
    const admin = (await createParties(system.database.db, { credits: '0.0000' })).userId;
    await system.database.db.updateTable('user_profiles').set({ role: 'admin' }).where('id', '=', admin).execute();
    const response = await app.inject({ url: '/api/ledger/reconciliation', headers: { authorization: `Bearer ${await system.token(admin)}` } });
    assert.is(response.statusCode, 200, response.body);
    return response.json();
  } finally {
    await app.close();
  }
}

test('a billing job that failed for good fails the reconciliation, naming its session', async () => {
  assert.is((await reconciliation()).ok, true, 'clean before');
  const parties = await createParties(system.database.db, { credits: '10.0000' });
  const header = sessionHeader(parties);
  // a message Postgres cannot store, as a gateway before the edge refused NUL would have queued it
  const job = messageJob(header, { content: 'hello\u0000world' });
  await system.queue.forUser(header.userId).add('message', job, { jobId: billingJobId.message(job.message.id) });
  await waitFor(async () => (await system.queue.getJobCounts('failed')).failed === 1, 15_000, 'the job to fail for good');
  const report = await reconciliation();
  assert.is(report.ok, false);
  assert.is(report.failedJobs.length, 1);
  assert.equal(report.failedJobs[0]!.sessionIds, [header.sessionId]);
  assert.is(report.failedJobs[0]!.id, billingJobId.message(job.message.id));
  assert.match(report.failedJobs[0]!.failedReason, /content/);
  await system.queue.forUser(header.userId).clean(0, 1000, 'failed');
  assert.is((await reconciliation()).ok, true, 'clean again once the failed job is dealt with');
});

test('a settled session whose stored messages fall short of its message_count is reported by both reconciliations', async () => {
  const { cloneId, client } = await connectedUserAndClone(system, '10.0000', '1.0000');
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  const replied = nextEvent(client, 'message:completed', (c) => c.message.senderType === 'ai');
  assert.ok((await request(client, 'message:send', { sessionId, clientMessageId: randomUUID(), content: 'hello' })).ok);
  await replied;
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const db = system.database.db;
  await waitFor(() => db.selectFrom('sessions').select('id').where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 15_000, 'settlement');
  await waitFor(async () => (await db.selectFrom('messages').select('id').where('session_id', '=', sessionId).execute()).length === 2, 15_000, 'both messages stored');
  // settled a while ago (past the grace for late messages), and one acknowledged message lost
  await db.updateTable('sessions').set({ settled_at: new Date(Date.now() - 3600_000) }).where('id', '=', sessionId).execute();
  assert.is((await reconciliation()).ok, true, 'counts agree');
  await db.deleteFrom('messages').where('session_id', '=', sessionId).where('sender_type', '=', 'ai').execute();

  const report = await reconciliation();
  assert.is(report.ok, false);
  assert.equal(report.messageCountMismatches, [{ sessionId, messageCount: 2, storedMessages: 1 }]);
  const periodic = await system.reconciler.runOnce();
  assert.equal(periodic.messageCountMismatches, [{ sessionId, messageCount: 2, storedMessages: 1 }]);
  assert.is(periodic.lostMessageSessions, 1);
  // the next run looks only at what ended since the last, less an hour: the session is still in view, counted once
  const next = await system.reconciler.runOnce();
  assert.equal(next.messageCountMismatches, [{ sessionId, messageCount: 2, storedMessages: 1 }]);
  assert.is(next.lostMessageSessions, 1);
});

test.run();
