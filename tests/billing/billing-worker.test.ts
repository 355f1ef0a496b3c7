import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { sql } from 'kysely';
import { billingJobId, type SettlementResult } from '#shared/contract/billing-jobs.ts';
import { parseRatio } from '#shared/money/money.ts';
import { BillingWorker } from '#billing/billing-worker.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { waitFor } from '../../scripts/lib/wait-until.ts';
import { createParties, messageJob, sessionHeader, settleJob, stateJob, type Parties } from './fixtures.ts';

const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const PREFIX = `tgtest_${process.pid}_${randomBytes(4).toString('hex')}`;

let t: TestDatabase;
let redis: Redis;
let queues: BillingQueues;
/** Jobs are added to one partition: the worker takes them from every one. */
let queue: Queue;
let worker: BillingWorker;
let parties: Parties;
const settled: SettlementResult[] = [];

test.before(async () => {
  t = await createTestDatabase();
  parties = await createParties(t.db, { credits: '20.0000' });
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  queues = new BillingQueues(redis, PREFIX);
  queue = queues.partitions[0]!;
  worker = new BillingWorker({
    config: { BILLING_CONCURRENCY: 4, BILLING_LOCK_MS: 30_000, platformFeeRate: parseRatio('0.20') },
    db: t.db,
    connection: redis,
    redisPrefix: PREFIX,
    onSettled: async (result) => {
      settled.push(result);
    },
  });
  await worker.start();
});

test.after(async () => {
  await worker?.close();
  if (queues) {
    for (const partition of queues.partitions) await partition.obliterate({ force: true });
    await queues.close();
  }
  if (redis) {
    const left = await redis.keys(`${PREFIX}:*`);
    if (left.length) await redis.del(...left);
    await redis.quit();
  }
  await t?.drop();
});


async function finished(jobId: string) {
  return waitFor(
    async () => {
      const job = await queue.getJob(jobId);
      return job?.finishedOn ? job : undefined;
    },
    10_000,
    `job ${jobId} to finish`,
  );
}

test('jobs through a real BullMQ queue settle a session once and report it to onSettled', async () => {
  const header = sessionHeader(parties);
  const user = messageJob(header, { content: 'hi' });
  const ai = messageJob(header, { senderType: 'ai', clientMessageId: null, content: 'hello!' });
  const settle = settleJob(header, { totalCost: '4.5000', version: 4 });
  await queue.add('session-state', stateJob(header, { version: 1 }), { jobId: billingJobId.sessionState(header.sessionId, 1) });
  await queue.add('message', user, { jobId: billingJobId.message(user.message.id) });
  await queue.add('message', user, { jobId: billingJobId.message(user.message.id) }); // same id: BullMQ keeps one
  await queue.add('message', ai, { jobId: billingJobId.message(ai.message.id) });
  await queue.add('session-state', stateJob(header, { version: 3, status: 'ended', activeMs: 180_000 }), {
    jobId: billingJobId.sessionState(header.sessionId, 3),
  });
  await queue.add('settle-session', settle, { jobId: billingJobId.settleSession(header.sessionId) });

  const job = await finished(billingJobId.settleSession(header.sessionId));
  assert.equal(job.returnvalue, {
    sessionId: header.sessionId,
    userId: parties.userId,
    applied: true,
    creditsRemaining: '15.5000',
    creditsVersion: '1',
    charged: '4.5000',
    creatorEarning: '3.6000',
    platformFee: '0.9000',
  });
  await finished(billingJobId.message(user.message.id));
  await finished(billingJobId.message(ai.message.id));

  // A redelivery (as after a lost lock) under another job id settles nothing more.
  await queue.add('settle-session', settle, { jobId: `${billingJobId.settleSession(header.sessionId)}_again` });
  const again = await finished(`${billingJobId.settleSession(header.sessionId)}_again`);
  assert.is((again.returnvalue as SettlementResult).applied, false);

  assert.equal(
    settled.filter((r) => r.sessionId === header.sessionId).map((r) => [r.applied, r.creditsRemaining]),
    [
      [true, '15.5000'],
      [false, '15.5000'],
    ],
  );
  const messages = await t.db.selectFrom('messages').select('id').where('session_id', '=', header.sessionId).execute();
  assert.is(messages.length, 2);
  const { rows } = await sql<{ sum: string; n: number }>`
    SELECT sum(amount)::numeric(14,4) AS sum, count(*)::int AS n FROM ledger_entries WHERE session_id = ${header.sessionId}
  `.execute(t.db);
  assert.equal(rows, [{ sum: '0.0000', n: 3 }]);
  const user_ = await t.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', parties.userId).executeTakeFirstOrThrow();
  assert.is(user_.credits_remaining, '15.5000');

  const metrics = await worker.registry.metrics();
  assert.match(metrics, /billing_jobs_total\{name="settle-session",result="ok"\} 1\b/);
  assert.match(metrics, /billing_jobs_total\{name="settle-session",result="duplicate"\} 1\b/);
  assert.match(metrics, /billing_settle_latency_seconds_count 1\b/);
  assert.match(metrics, /billing_queue_depth\{state="waiting"\} 0\b/);
});

test('an invalid payload fails at once, without retries', async () => {
  const jobId = `bad_${randomUUID()}`;
  await queue.add('settle-session', { session: { sessionId: 'nope' }, totalCost: 12 }, { jobId });
  const job = await finished(jobId);
  assert.is(await job.getState(), 'failed');
  assert.is(job.attemptsMade, 1, 'no retry');
  assert.match(job.failedReason ?? '', /invalid settle-session payload/);
  const metrics = await worker.registry.metrics();
  assert.match(metrics, /billing_jobs_total\{name="settle-session",result="invalid"\} 1\b/);
  assert.match(metrics, /billing_queue_depth\{state="failed"\} 1\b/);
});

test('an unknown job name fails at once, without retries', async () => {
  const jobId = `unknown_${randomUUID()}`;
  await queue.add('refund-everything', { session: sessionHeader(parties) }, { jobId });
  const job = await finished(jobId);
  assert.is(await job.getState(), 'failed');
  assert.is(job.attemptsMade, 1);
  assert.match(job.failedReason ?? '', /unknown billing job name/);
});

test('a session of an unknown clone fails at once, leaving no row behind', async () => {
  const header = sessionHeader({ ...parties, cloneId: randomUUID() });
  const jobId = billingJobId.settleSession(header.sessionId);
  await queue.add('settle-session', settleJob(header), { jobId });
  const job = await finished(jobId);
  assert.is(await job.getState(), 'failed');
  assert.is(job.attemptsMade, 1);
  assert.match(job.failedReason ?? '', /unknown_reference/);
  const rows = await t.db.selectFrom('sessions').select('id').where('id', '=', header.sessionId).execute();
  assert.is(rows.length, 0);
});

test('a failing onSettled hook retries the job; the retry settles nothing twice', async () => {
  const local = `${PREFIX}_hook`;
  const hookQueues = new BillingQueues(redis, local);
  const hookQueue = hookQueues.partitions[0]!;
  let calls = 0;
  const flaky = new BillingWorker({
    config: { BILLING_CONCURRENCY: 1, BILLING_LOCK_MS: 30_000, platformFeeRate: parseRatio('0.20') },
    db: t.db,
    connection: redis,
    redisPrefix: local,
    onSettled: async () => {
      calls += 1;
      if (calls === 1) throw new Error('live state unavailable');
    },
  });
  await flaky.start();
  try {
    const header = sessionHeader(parties);
    const jobId = billingJobId.settleSession(header.sessionId);
    await hookQueue.add('settle-session', settleJob(header, { totalCost: '1.0000' }), {
      jobId,
      backoff: { type: 'fixed', delay: 10 },
    });
    const job = await waitFor(
      async () => {
        const j = await hookQueue.getJob(jobId);
        return j?.finishedOn ? j : undefined;
      },
      10_000,
      'the retried job to complete',
    );
    assert.is(await job.getState(), 'completed');
    assert.is(job.attemptsMade, 2);
    assert.is(calls, 2);
    assert.is((job.returnvalue as SettlementResult).applied, false, 'the retry found the settlement done');
    const entries = await t.db.selectFrom('ledger_entries').select('id').where('session_id', '=', header.sessionId).execute();
    assert.is(entries.length, 3);
  } finally {
    await flaky.close();
    // the worker used every partition: each one's keys go, not only the one the test filled
    for (const partition of hookQueues.partitions) await partition.obliterate({ force: true });
    await hookQueues.close();
  }
});

test('a partition worker that takes no job while its jobs wait is recreated (the failover stall); the jobs then run', async () => {
  const local = `${PREFIX}_watch`;
  const watchQueues = new BillingQueues(redis, local);
  const watched = new BillingWorker({
    config: { BILLING_CONCURRENCY: 1, BILLING_LOCK_MS: 1000, platformFeeRate: parseRatio('0.20') },
    db: t.db,
    connection: redis,
    redisPrefix: local,
  });
  await watched.start();
  try {
    const stuck = watched.partitionWorkers()[0]!;
    // takes nothing more, as a worker left waiting on a blocking connection that never came back (without an error)
    await stuck.close();
    const header = sessionHeader(parties);
    const jobId = billingJobId.settleSession(header.sessionId);
    await watchQueues.partitions[0]!.add('settle-session', settleJob(header, { totalCost: '1.0000' }), { jobId });
    const job = await waitFor(async () => {
      const j = await watchQueues.partitions[0]!.getJob(jobId);
      return j?.finishedOn ? j : undefined;
    }, 30_000, 'the job, once the stuck worker is replaced');
    assert.is(await job.getState(), 'completed');
    assert.ok(watched.partitionWorkers()[0] !== stuck, 'partition 0 has a new worker');
    assert.ok(watched.partitionWorkers().slice(1).every((w) => w.isRunning()), 'the other partitions kept theirs');
    assert.match(await watched.registry.metrics(), /billing_partition_worker_restarts_total 1\b/);
  } finally {
    await watched.close();
    for (const partition of watchQueues.partitions) await partition.obliterate({ force: true });
    await watchQueues.close();
  }
});

test.run();
