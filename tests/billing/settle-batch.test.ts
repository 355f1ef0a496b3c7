import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sql } from 'kysely';
import { billingJobId, type SettleSessionJob, type SettlementResult } from '#shared/contract/billing-jobs.ts';
import { formatMoney, parseMoney, parseRatio } from '#shared/money/money.ts';
import { BillingWorker } from '#billing/billing-worker.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { settleSession } from '#billing/settle/settle-session.ts';
import { settleSessions, type SettleOutcome } from '#billing/settle/settle-sessions.ts';
import type { BillingJob } from '#shared/live-state/outbox-jobs.ts';
import { QueueJobSink } from '#gateway/outbox/queue-job-sink.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createParties, sessionHeader, settleJob, snapshot } from './fixtures.ts';

// Many settlements in one transaction: each session once, each user capped at their credits across the batch,
// clone totals and analytics by the batch's sums, refused or busy sessions never holding back the others.

const FEE = parseRatio('0.20');
const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const PREFIX = `tgtest_${process.pid}_${randomBytes(4).toString('hex')}`;
let t: TestDatabase;

test.before(async () => {
  t = await createTestDatabase();
});
test.after(async () => {
  await t?.drop();
});

const describe = (o: SettleOutcome) => ('result' in o ? (o.result.applied ? `settled ${o.result.charged}` : `before ${o.result.charged}`) : 'error' in o ? o.error.code : 'deferred');

async function ledgerBySession(ids: string[]) {
  const { rows } = await sql<{ session_id: string; n: number; sum: string; charge: string }>`
    SELECT session_id, count(*)::int AS n, sum(amount)::numeric(14,4)::text AS sum,
           (-sum(amount) FILTER (WHERE kind = 'session_charge'))::numeric(14,4)::text AS charge
      FROM ledger_entries WHERE session_id = ANY(${ids}::uuid[]) GROUP BY session_id`.execute(t.db);
  return new Map(rows.map((r) => [r.session_id, r]));
}

test('one batch: each session once, credits capped across a user’s sessions, sums everywhere; the batch again changes nothing', async () => {
  const a = await createParties(t.db, { credits: '10.0000' });
  const b = await createParties(t.db, { credits: '100.0000', creatorId: a.creatorId });
  const stranger = await createParties(t.db, { creatorId: a.creatorId });
  const bOnA = { ...b, cloneId: a.cloneId }; // everyone on a's clone
  const settledBefore = settleJob(sessionHeader(a), { totalCost: '1.0000' });
  await settleSession(t.db, settledBefore, FEE);

  const aJobs = ['4.0000', '4.0000', '4.0000', '1.0000'].map((totalCost, i) =>
    settleJob(sessionHeader(a), { totalCost, durationMinutes: 2, userMessageCount: 1, ...(i === 3 ? { endTime: '2025-03-02T08:00:00.000Z' } : {}) }),
  );
  const bJobs = ['2.5003', '0.0001'].map((totalCost) => settleJob(sessionHeader(bOnA), { totalCost, endTime: '2025-03-02T09:00:00.000Z' }));
  const jobs: SettleSessionJob[] = [
    aJobs[0]!,
    bJobs[0]!,
    aJobs[1]!,
    aJobs[0]!, // the same session twice in one batch
    settledBefore, // settled by an earlier transaction
    settleJob(sessionHeader({ ...a, cloneId: randomUUID() })), // unknown clone: refused alone
    { ...settledBefore, session: { ...settledBefore.session, userId: stranger.userId } }, // someone else's session
    aJobs[2]!, // 1.0000 left: capped
    aJobs[3]!, // nothing left: charged 0
    bJobs[1]!,
  ];
  const warnings: object[] = [];
  const outcomes = await settleSessions(t.db, jobs, FEE, { log: { warn: (context) => warnings.push(context) } });
  assert.equal(outcomes.map(describe), [
    'settled 4.0000',
    'settled 2.5003',
    'settled 4.0000',
    'before 4.0000',
    'before 1.0000',
    'unknown_reference',
    'session_mismatch',
    'settled 1.0000',
    'settled 0.0000',
    'settled 0.0001',
  ]);
  assert.is(warnings.length, 2, 'two charges capped');

  // Balances: one debit per user and batch, so credits_version moves once; every result reports it.
  const users = await t.db.selectFrom('user_profiles').select(['id', 'credits_remaining', 'total_spent', 'credits_version']).where('id', 'in', [a.userId, b.userId]).execute();
  const userA = users.find((u) => u.id === a.userId)!;
  const userB = users.find((u) => u.id === b.userId)!;
  assert.equal([userA.credits_remaining, userA.total_spent, userA.credits_version], ['0.0000', '10.0000', '2']);
  assert.equal([userB.credits_remaining, userB.total_spent, userB.credits_version], ['97.4996', '2.5004', '1']);
  for (const [i, o] of outcomes.entries()) {
    if (!('result' in o)) continue;
    const expected = o.result.userId === a.userId ? userA : userB;
    assert.equal([o.result.creditsRemaining, o.result.creditsVersion], [expected.credits_remaining, expected.credits_version], `job ${i}`);
  }
  const sessions = await t.db
    .selectFrom('sessions')
    .select(['id', 'settled_credits_version', 'total_cost', 'status'])
    .where('id', 'in', [...aJobs, ...bJobs].map((j) => j.session.sessionId))
    .execute();
  for (const s of sessions) {
    assert.is(s.status, 'ended');
    assert.is(s.settled_credits_version, aJobs.some((j) => j.session.sessionId === s.id) ? '2' : '1', 'the version right after the debit');
  }

  // Ledger: three entries per session summing to zero, the charge as reported.
  const settledNow = outcomes.flatMap((o) => ('result' in o && o.result.applied ? [o.result] : []));
  const ledger = await ledgerBySession(settledNow.map((r) => r.sessionId));
  for (const r of settledNow) {
    const entries = ledger.get(r.sessionId)!;
    assert.equal([entries.n, entries.sum, entries.charge], [3, '0.0000', r.charged], r.sessionId);
  }
  const earned = settledNow.reduce((sum, r) => sum + parseMoney(r.creatorEarning), 0n) + parseMoney('0.8000');
  const clone = await t.db.selectFrom('clones').select(['total_sessions', 'total_earnings']).where('id', '=', a.cloneId).executeTakeFirstOrThrow();
  assert.equal([clone.total_sessions, clone.total_earnings], ['7', formatMoney(earned)]);

  // Analytics: the users' days, the creator's days; on 2025-03-02, a returns (their 03-01 sessions, settled in the
  // same batch, count) and b is new.
  const userDays = await t.db.selectFrom('user_analytics').select(['user_id', 'date', 'sessions_count', 'messages_sent', 'total_spent']).where('user_id', 'in', [a.userId, b.userId]).orderBy('user_id').orderBy('date').execute();
  assert.equal(
    userDays.filter((d) => d.user_id === a.userId).map((d) => [d.date, d.sessions_count, d.messages_sent, d.total_spent]),
    [
      ['2025-03-01', 4, 3 + 3, '10.0000'],
      ['2025-03-02', 1, 1, '0.0000'],
    ],
  );
  const creatorDays = await t.db.selectFrom('creator_analytics').select(['date', 'sessions_count', 'total_earnings', 'user_retention_rate']).where('clone_id', '=', a.cloneId).orderBy('date').execute();
  assert.equal(creatorDays.map((d) => [d.date, d.sessions_count, d.user_retention_rate]), [
    ['2025-03-01', 4, '0.0000'],
    ['2025-03-02', 3, '0.5000'],
  ]);
  assert.is(formatMoney(creatorDays.reduce((sum, d) => sum + parseMoney(d.total_earnings), 0n)), clone.total_earnings);
  const ended = await t.db.selectFrom('session_events').select('session_id').where('kind', '=', 'ended').where('session_id', 'in', settledNow.map((r) => r.sessionId)).execute();
  assert.is(ended.length, settledNow.length, 'each end on the audit trail');

  // The same batch again (a retried group): nothing changes, every session reports its first settlement.
  const before = await snapshot(t.db);
  const again = await settleSessions(t.db, jobs, FEE);
  assert.equal(again.map(describe), outcomes.map(describe).map((d) => d.replace('settled', 'before')));
  assert.equal(await snapshot(t.db), before);
});

test('a user another transaction holds is deferred, not waited for: the rest of the batch settles', async () => {
  const busy = await createParties(t.db);
  const free = await createParties(t.db, { creatorId: busy.creatorId });
  const busyJob = settleJob(sessionHeader(busy), { totalCost: '3.0000' });
  const freeJob = settleJob(sessionHeader({ ...free, cloneId: busy.cloneId }), { totalCost: '2.0000' });
  const lock = new pg.Client({ connectionString: t.url });
  await lock.connect();
  try {
    await lock.query('begin');
    await lock.query('select id from user_profiles where id = $1 for no key update', [busy.userId]);
    const outcomes = await settleSessions(t.db, [busyJob, freeJob, busyJob], FEE, { skipLockedUsers: true });
    assert.equal(outcomes.map(describe), ['deferred', 'settled 2.0000', 'deferred']);
    const row = await t.db.selectFrom('sessions').select('settled_at').where('id', '=', busyJob.session.sessionId).executeTakeFirstOrThrow();
    assert.is(row.settled_at, null);
    // Alone, it waits for the lock and settles once it is released.
    const alone = settleSession(t.db, busyJob, FEE);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await lock.query('rollback');
    assert.is((await alone).charged, '3.0000');
  } finally {
    await lock.end();
  }
});

test('the worker settles many relayed settlements at once (batched), each once, and reports each to onSettled', async () => {
  const prefix = `${PREFIX}_worker`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queues = new BillingQueues(redis, prefix);
  const reported: SettlementResult[] = [];
  const worker = new BillingWorker({
    config: { BILLING_CONCURRENCY: 8, BILLING_LOCK_MS: 30_000, platformFeeRate: FEE },
    db: t.db,
    connection: redis,
    redisPrefix: prefix,
    onSettled: async (result) => {
      reported.push(result);
    },
  });
  try {
    const users = await Promise.all(Array.from({ length: 6 }, () => createParties(t.db, { credits: '50.0000' })));
    const cloneId = users[0]!.cloneId;
    const jobs = users.flatMap((u) => Array.from({ length: 10 }, () => settleJob(sessionHeader({ ...u, cloneId }), { totalCost: '1.2345' })));
    for (const partition of queues.partitions) await partition.pause();
    // as the gateway relays them: ends of several users at once share batch jobs (in each user's partition)
    const sink = new QueueJobSink(queues, { maxFacts: 12 });
    const relayed = (data: SettleSessionJob): BillingJob => ({ name: 'settle-session', data, jobId: billingJobId.settleSession(data.session.sessionId) });
    await Promise.all(jobs.map((data) => sink.addJobs(data.session.userId, [relayed(data)])));
    const waiting = (await Promise.all(queues.partitions.map((partition) => partition.getJobs(['waiting'])))).flat();
    assert.ok(waiting.some((j) => j.name === 'fact-batch'), 'settlements were batched');
    // a redelivery of some alone, under other ids (in a partition of its own: the worker takes every partition)
    await queues.partitions[0]!.addBulk(jobs.slice(0, 7).map((data) => ({ name: 'settle-session', data, opts: { jobId: `${billingJobId.settleSession(data.session.sessionId)}_again` } })));
    await worker.start();
    for (const partition of queues.partitions) await partition.resume();
    const deadline = Date.now() + 30_000;
    while (reported.length < jobs.length + 7 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.is(reported.length, jobs.length + 7);
    assert.is(reported.filter((r) => r.applied).length, jobs.length, 'each session settled once');
    const ledger = await ledgerBySession(jobs.map((j) => j.session.sessionId));
    for (const job of jobs) assert.equal([ledger.get(job.session.sessionId)?.n, ledger.get(job.session.sessionId)?.sum], [3, '0.0000']);
    for (const u of users) {
      const row = await t.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', u.userId).executeTakeFirstOrThrow();
      assert.is(row.credits_remaining, '37.6550');
    }
    const clone = await t.db.selectFrom('clones').select(['total_sessions', 'total_earnings']).where('id', '=', cloneId).executeTakeFirstOrThrow();
    assert.is(clone.total_sessions, String(jobs.length));
    const earning = reported.find((r) => r.applied)!.creatorEarning;
    assert.is(clone.total_earnings, formatMoney(parseMoney(earning) * BigInt(jobs.length)));
  } finally {
    await worker.close();
    for (const partition of queues.partitions) await partition.obliterate({ force: true });
    await queues.close();
    await redis.quit();
  }
});

test('the worker: a busy user’s settlement waits holding nothing, while the others settle and its state still lands', async () => {
  const prefix = `${PREFIX}_busy`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queues = new BillingQueues(redis, prefix);
  const queue = queues.partitions[0]!; // the worker takes every partition
  const worker = new BillingWorker({ config: { BILLING_CONCURRENCY: 4, BILLING_LOCK_MS: 30_000, platformFeeRate: FEE }, db: t.db, connection: redis, redisPrefix: prefix });
  const lock = new pg.Client({ connectionString: t.url });
  await lock.connect();
  try {
    const busy = await createParties(t.db);
    const others = await Promise.all([1, 2, 3].map(() => createParties(t.db, { creatorId: busy.creatorId })));
    const busyJob = settleJob(sessionHeader(busy), { totalCost: '3.0000', version: 4 });
    const otherJobs = others.map((p) => settleJob(sessionHeader({ ...p, cloneId: busy.cloneId }), { totalCost: '1.0000' }));
    await lock.query('begin');
    await lock.query('select id from user_profiles where id = $1 for no key update', [busy.userId]);
    await worker.start();
    const add = (data: SettleSessionJob) => queue.add('settle-session', data, { jobId: billingJobId.settleSession(data.session.sessionId) });
    await add(busyJob);
    for (const job of otherJobs) await add(job);
    const settled = (ids: string[]) =>
      t.db.selectFrom('sessions').select('id').where('id', 'in', ids).where('settled_at', 'is not', null).execute();
    const deadline = Date.now() + 20_000;
    while ((await settled(otherJobs.map((j) => j.session.sessionId))).length < otherJobs.length) {
      if (Date.now() > deadline) throw new Error('the other sessions did not settle');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The busy session's state job is not stuck behind its waiting settlement.
    const stateJobId = billingJobId.sessionState(busyJob.session.sessionId, 3);
    await queue.add('session-state', { session: busyJob.session, status: 'ended', version: 3, at: busyJob.endTime, activeMs: 1000, cost: '3.0000', messageCount: 0, reason: 'user' }, { jobId: stateJobId });
    for (;;) {
      const job = await queue.getJob(stateJobId);
      if (job?.finishedOn) break;
      if (Date.now() > deadline) throw new Error('the state job was held up by the waiting settlement');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.is((await settled([busyJob.session.sessionId])).length, 0, 'the busy user is not settled while held');
    await lock.query('rollback');
    for (;;) {
      const job = await queue.getJob(billingJobId.settleSession(busyJob.session.sessionId));
      if (job?.finishedOn) {
        assert.is((job.returnvalue as SettlementResult).charged, '3.0000');
        break;
      }
      if (Date.now() > deadline) throw new Error('the busy session did not settle after the lock was released');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await lock.end().catch(() => undefined);
    await worker.close();
    // the worker used every partition: each one's keys go, not only the one the test filled
    for (const partition of queues.partitions) await partition.obliterate({ force: true });
    await queues.close();
    await redis.quit();
  }
});

test.run();
