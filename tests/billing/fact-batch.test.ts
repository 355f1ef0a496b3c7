import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { billingJobId, type MessageJob } from '#shared/contract/billing-jobs.ts';
import { parseRatio } from '#shared/money/money.ts';
import { BillingWorker } from '#billing/billing-worker.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { writeFacts, type Fact } from '#billing/settle/write-facts.ts';
import type { BillingJob } from '#shared/live-state/outbox-jobs.ts';
import { packJobs } from '#gateway/outbox/pack-jobs.ts';
import { QueueJobSink } from '#gateway/outbox/queue-job-sink.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { waitFor } from '../../scripts/lib/wait-until.ts';
import { createParties, messageJob, sessionHeader, settleJob, snapshot, stateJob, type Parties } from './fixtures.ts';

// Facts (messages, states, checkpoints) travel and are written many at a time: duplicates inside a batch, a batch
// relayed again, and the same fact in two different batches must each count once.

const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const PREFIX = `tgtest_${process.pid}_${randomBytes(4).toString('hex')}`;

let t: TestDatabase;
let parties: Parties;
let redis: Redis;

test.before(async () => {
  t = await createTestDatabase();
  parties = await createParties(t.db);
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
});
test.after(async () => {
  if (redis) {
    const left = await redis.keys(`${PREFIX}*`);
    if (left.length) await redis.del(...left);
    await redis.quit();
  }
  await t?.drop();
});


const message = (data: MessageJob): Fact => ({ name: 'message', data });
const messagesOf = (sessionId: string) =>
  t.db.selectFrom('messages').select(['id', 'client_message_id', 'content']).where('session_id', '=', sessionId).orderBy('id').execute();
const sessionRow = (id: string) => t.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

test('a batch with duplicates stores each message once, folds the states to the newest, and a retried batch writes nothing', async () => {
  const header = sessionHeader(parties);
  const question = messageJob(header, { clientMessageId: 'c-1', content: 'first' });
  const resent = messageJob(header, { clientMessageId: 'c-1', content: 'first, sent again under a new id' });
  const reply = messageJob(header, {
    senderType: 'ai',
    clientMessageId: null,
    content: 'an answer',
    citations: [{ documentId: randomUUID(), title: 'notes', chunkIndex: 2 }],
  });
  const at = (second: number) => new Date(Date.UTC(2025, 2, 1, 10, 0, second)).toISOString();
  const state = (version: number, status: 'active' | 'paused') =>
    stateJob(header, { version, status, at: at(version), activeMs: version * 1000, cost: `${version}.0000`, messageCount: version });
  const batch: Fact[] = [
    message(question),
    { name: 'session-state', data: state(3, 'paused') },
    message(question), // the same message twice in one batch
    message(resent), // same client message id, another id
    { name: 'session-state', data: state(1, 'active') },
    message(reply),
    { name: 'session-state', data: state(2, 'active') },
    { name: 'session-state', data: state(3, 'paused') },
    { name: 'session-checkpoint', data: { session: header, at: at(9), activeMs: 9000, cost: '9.0000', messageCount: 9 } },
  ];
  const outcomes = await writeFacts(t.db, batch);
  assert.equal(
    outcomes.map((o) => ('written' in o ? o.written : o.error.code)),
    [true, true, false, false, false, true, false, false, true],
  );

  const stored = await messagesOf(header.sessionId);
  assert.equal(stored.map((m) => m.id).sort(), [question.message.id, reply.message.id].sort());
  assert.is(stored.find((m) => m.id === question.message.id)?.content, 'first');
  const row = await sessionRow(header.sessionId);
  assert.is(row.status, 'paused');
  assert.is(row.state_version, 3);
  assert.is(row.checkpoint_cost, '9.0000', 'the latest checkpoint of the batch');
  assert.is(row.active_ms, '9000');
  const events = await t.db.selectFrom('session_events').select(['version', 'kind']).where('session_id', '=', header.sessionId).orderBy('version').execute();
  assert.equal(events, [
    { version: 1, kind: 'started' },
    { version: 2, kind: 'resumed' },
    { version: 3, kind: 'paused' },
  ]);
  const reread = await t.db.selectFrom('messages').select('citations').where('id', '=', reply.message.id).executeTakeFirstOrThrow();
  assert.equal(reread.citations, reply.message.citations);

  // The whole batch again (a retried job), and again shuffled inside a bigger one: nothing more is written.
  const before = await snapshot(t.db);
  const again = await writeFacts(t.db, batch);
  assert.ok(again.every((o) => 'written' in o && !o.written));
  const other = sessionHeader(parties);
  const extra = messageJob(other, { content: 'new in the bigger batch' });
  const mixed = await writeFacts(t.db, [...batch].reverse().concat(message(extra)));
  assert.equal(mixed.map((o) => ('written' in o ? o.written : o.error.code)), [...batch.map(() => false), true]);
  const after = await snapshot(t.db);
  assert.equal(after.messages!.length, before.messages!.length + 1);
  assert.equal(await messagesOf(header.sessionId), stored);
});

test('a refused fact is refused alone: the rest of its batch is written', async () => {
  const header = sessionHeader(parties);
  const stranger = await createParties(t.db);
  const unknownClone = sessionHeader({ ...parties, cloneId: randomUUID() });
  const good = messageJob(header);
  await writeFacts(t.db, [message(good)]);
  const outcomes = await writeFacts(t.db, [
    message(messageJob({ ...header, userId: stranger.userId })), // the session belongs to another user
    message(messageJob(unknownClone)),
    { name: 'session-state', data: stateJob(header, { version: 2, status: 'paused' }) },
    message(messageJob(header, { content: 'second' })),
  ]);
  assert.equal(
    outcomes.map((o) => ('written' in o ? o.written : o.error.code)),
    ['session_mismatch', 'unknown_reference', true, true],
  );
  assert.is((await messagesOf(header.sessionId)).length, 2);
  const none = await t.db.selectFrom('sessions').select('id').where('id', '=', unknownClone.sessionId).execute();
  assert.is(none.length, 0, 'no session row for an unknown clone');
});

test('packJobs: facts in batches named by their ids in any order, settlements apart, duplicates dropped', () => {
  const header = sessionHeader(parties);
  const facts: BillingJob[] = Array.from({ length: 5 }, () => {
    const data = messageJob(header);
    return { name: 'message', data, jobId: billingJobId.message(data.message.id) };
  });
  const settle: BillingJob = { name: 'settle-session', data: settleJob(header), jobId: billingJobId.settleSession(header.sessionId) };
  const packed = packJobs([facts[0]!, settle, ...facts, facts[1]!], 3);
  assert.equal(packed.map((j) => j.name), ['fact-batch', 'fact-batch', 'settle-session']);
  assert.is(packed[2]!.opts.jobId, `settle_${header.sessionId}`);
  const carried = packed.slice(0, 2).flatMap((j) => (j.data as { facts: { id: string }[] }).facts.map((f) => f.id));
  assert.equal(carried.sort(), facts.map((f) => f.jobId).sort(), 'each fact once');
  const reversed = packJobs([...facts.slice(0, 3)].reverse(), 3);
  assert.is(reversed[0]!.opts.jobId, packed[0]!.opts.jobId, 'the same facts in another order make the same batch');
  const [alone] = packJobs([facts[4]!]);
  assert.equal(alone, { name: 'message', data: facts[4]!.data, opts: { jobId: facts[4]!.jobId } }, 'a batch of one is the fact’s own job');
  const other = sessionHeader(parties);
  const settleOther: BillingJob = { name: 'settle-session', data: settleJob(other), jobId: billingJobId.settleSession(other.sessionId) };
  const two = packJobs([settle, facts[0]!, settleOther, facts[1]!]);
  assert.equal(two.map((j) => j.name), ['fact-batch', 'fact-batch']);
  assert.equal((two[1]!.data as { facts: { name: string }[] }).facts.map((f) => f.name), ['settle-session', 'settle-session'], 'settlements batched with settlements only');
});

test('through BullMQ: concurrent relays share batch jobs; re-relayed, regrouped and single duplicates are stored once', async () => {
  const prefix = `${PREFIX}_queue`;
  const queues = new BillingQueues(redis, prefix);
  const sink = new QueueJobSink(queues, { maxFacts: 16 });
  const worker = new BillingWorker({
    config: { BILLING_CONCURRENCY: 4, BILLING_LOCK_MS: 30_000, platformFeeRate: parseRatio('0.20') },
    db: t.db,
    connection: redis,
    redisPrefix: prefix,
  });
  try {
    const sessions = Array.from({ length: 20 }, () => sessionHeader(parties));
    const perSession = sessions.map((header) =>
      Array.from({ length: 6 }, (_, i): BillingJob => {
        const data = messageJob(header, { content: `m${i}`, clientMessageId: `c${i}` });
        return { name: 'message', data, jobId: billingJobId.message(data.message.id) };
      }),
    );
    const all = perSession.flat();
    // every session is the same user's: their jobs are in that user's partition
    const userId = sessions[0]!.userId;
    const queue: Queue = queues.forUser(userId);
    // 20 relays at once (as 20 users' scripts), then duplicates of every kind while the queue is paused
    await queue.pause();
    await Promise.all(perSession.map((jobs) => sink.addJobs(userId, jobs)));
    await Promise.all(perSession.map((jobs) => sink.addJobs(userId, jobs))); // the same relays again: same batches
    await sink.addJobs(userId, [...all].reverse()); // everything regrouped: other batches
    await queue.addBulk(all.slice(0, 10).map((j) => ({ name: j.name, data: j.data, opts: { jobId: j.jobId } }))); // and alone
    const counts = await queue.getJobCounts('waiting');
    const queued = counts.waiting ?? 0;
    assert.ok(queued < all.length, `fewer jobs (${queued}) than facts (${all.length})`);
    const batches = (await queue.getJobs(['waiting'])).filter((j) => j.name === 'fact-batch');
    assert.ok(batches.length > 0, 'facts were batched');

    await worker.start();
    await queue.resume();
    await waitFor(
      async () => Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((n) => n === 0),
      20_000,
      'the queue to drain',
    );
    const failed = await queue.getJobCounts('failed');
    assert.is(failed.failed, 0);
    for (const [i, header] of sessions.entries()) {
      const stored = await messagesOf(header.sessionId);
      assert.equal(stored.map((m) => m.id).sort(), perSession[i]!.map((j) => (j.data as MessageJob).message.id).sort(), `session ${i}: each message once`);
    }
    const metrics = await worker.registry.metrics();
    const ok = Number(/billing_jobs_total\{name="message",result="ok"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    const duplicates = Number(/billing_jobs_total\{name="message",result="duplicate"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.is(ok, all.length, 'each message stored once');
    assert.ok(duplicates >= all.length + 10, `the duplicates were absorbed (${duplicates})`);
  } finally {
    await worker.close();
    for (const partition of queues.partitions) await partition.obliterate({ force: true });
    await queues.close();
  }
});

test.run();
