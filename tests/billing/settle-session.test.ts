import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { sql } from 'kysely';
import { formatMoney, parseMoney, parseRatio } from '#shared/money/money.ts';
import { splitTotal } from '#shared/money/pricing.ts';
import { sessionLedgerEntries } from '#billing/ledger/session-ledger-entries.ts';
import { BillingJobError } from '#billing/settle/billing-job-error.ts';
import { settleSession } from '#billing/settle/settle-session.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createParties, sessionHeader, settleJob, snapshot } from './fixtures.ts';

const FEE = parseRatio('0.20');
let t: TestDatabase;

test.before(async () => {
  t = await createTestDatabase();
});
test.after(async () => {
  await t?.drop();
});

async function ledgerOf(sessionId: string) {
  const rows = await t.db
    .selectFrom('ledger_entries')
    .select(['kind', 'account_kind', 'account_id', 'amount'])
    .where('session_id', '=', sessionId)
    .orderBy('kind')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.kind, r]));
}

async function ledgerSum(sessionId: string): Promise<string> {
  const { rows } = await sql<{ sum: string }>`
    SELECT coalesce(sum(amount), 0)::numeric(14,4) AS sum FROM ledger_entries WHERE session_id = ${sessionId}
  `.execute(t.db);
  return rows[0]!.sum;
}

test('settling a session writes a balanced ledger and moves balances, clone totals and analytics', async () => {
  const parties = await createParties(t.db, { credits: '100.0000' });
  const header = sessionHeader(parties);
  const result = await settleSession(t.db, settleJob(header, { totalCost: '15.0003' }), FEE);

  // fee = 15.0003 × 0.20 = 3.00006 → 3.0001 (half-up); earning = 15.0003 − 3.0001
  assert.equal(result, {
    sessionId: header.sessionId,
    userId: parties.userId,
    applied: true,
    creditsRemaining: '84.9997',
    creditsVersion: '1',
    charged: '15.0003',
    creatorEarning: '12.0002',
    platformFee: '3.0001',
  });

  const ledger = await ledgerOf(header.sessionId);
  assert.equal(ledger, {
    creator_earning: { kind: 'creator_earning', account_kind: 'creator', account_id: parties.creatorId, amount: '12.0002' },
    platform_fee: { kind: 'platform_fee', account_kind: 'platform', account_id: null, amount: '3.0001' },
    session_charge: { kind: 'session_charge', account_kind: 'user', account_id: parties.userId, amount: '-15.0003' },
  });
  assert.is(await ledgerSum(header.sessionId), '0.0000');

  const user = await t.db.selectFrom('user_profiles').selectAll().where('id', '=', parties.userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '84.9997');
  assert.is(user.total_spent, '15.0003');
  assert.is(user.credits_version, '1');

  const clone = await t.db.selectFrom('clones').selectAll().where('id', '=', parties.cloneId).executeTakeFirstOrThrow();
  assert.is(clone.total_sessions, '1');
  assert.is(clone.total_earnings, '12.0002');

  const session = await t.db.selectFrom('sessions').selectAll().where('id', '=', header.sessionId).executeTakeFirstOrThrow();
  assert.is(session.status, 'ended');
  assert.is(session.total_cost, '15.0003');
  assert.is(session.end_time?.toISOString(), '2025-03-01T10:10:00.000Z');
  assert.is(session.start_time.toISOString(), '2025-03-01T10:00:00.000Z');
  assert.is(session.duration_minutes, 10);
  assert.is(session.active_ms, '600000');
  assert.is(session.message_count, 6);
  assert.is(session.end_reason, 'user');
  assert.is(session.state_version, 5);
  assert.is(session.rate_per_minute, '1.5000');
  assert.ok(session.settled_at instanceof Date);

  const userDay = await t.db.selectFrom('user_analytics').selectAll().where('user_id', '=', parties.userId).execute();
  assert.equal(userDay, [
    {
      user_id: parties.userId,
      date: '2025-03-01',
      sessions_count: 1,
      messages_sent: 3,
      total_duration_minutes: 10,
      total_spent: '15.0003',
      documents_uploaded: 0,
    },
  ]);
  const creatorDay = await t.db.selectFrom('creator_analytics').selectAll().where('clone_id', '=', parties.cloneId).execute();
  assert.equal(creatorDay, [
    {
      creator_id: parties.creatorId,
      clone_id: parties.cloneId,
      date: '2025-03-01',
      total_earnings: '12.0002',
      sessions_count: 1,
      average_rating: '4.50',
      user_retention_rate: '0.0000',
    },
  ]);

  // A second session the same day adds to the same analytics rows.
  await settleSession(t.db, settleJob(sessionHeader(parties), { totalCost: '1.0000', userMessageCount: 2, durationMinutes: 1 }), FEE);
  const day = await t.db.selectFrom('user_analytics').selectAll().where('user_id', '=', parties.userId).executeTakeFirstOrThrow();
  assert.is(day.sessions_count, 2);
  assert.is(day.messages_sent, 5);
  assert.is(day.total_duration_minutes, 11);
  assert.is(day.total_spent, '16.0003');
  const creator = await t.db.selectFrom('creator_analytics').selectAll().where('clone_id', '=', parties.cloneId).executeTakeFirstOrThrow();
  assert.is(creator.total_earnings, '12.8002');
  assert.is(creator.sessions_count, 2);
});

test('the fee is rounded half-up: 0.0003 at 0.20 is a fee of 0.0001 and an earning of 0.0002', async () => {
  const parties = await createParties(t.db);
  const header = sessionHeader(parties);
  const result = await settleSession(t.db, settleJob(header, { totalCost: '0.0003' }), FEE);
  assert.is(result.platformFee, '0.0001');
  assert.is(result.creatorEarning, '0.0002');
  const ledger = await ledgerOf(header.sessionId);
  assert.is(ledger.session_charge!.amount, '-0.0003');
  assert.is(ledger.platform_fee!.amount, '0.0001');
  assert.is(ledger.creator_earning!.amount, '0.0002');
});

test('settling the same session twice changes nothing and reports the first settlement', async () => {
  const parties = await createParties(t.db);
  const header = sessionHeader(parties);
  const job = settleJob(header, { totalCost: '7.5000' });
  const first = await settleSession(t.db, job, FEE);
  const before = await snapshot(t.db);
  const second = await settleSession(t.db, job, FEE);
  const third = await settleSession(t.db, { ...job, totalCost: '9.0000', version: 9 }, FEE);
  assert.equal(await snapshot(t.db), before);
  assert.equal(second, { ...first, applied: false });
  assert.equal(third, { ...first, applied: false });
});

test('five concurrent settlements of one session settle it once', async () => {
  const parties = await createParties(t.db);
  const header = sessionHeader(parties);
  const job = settleJob(header, { totalCost: '2.0000' });
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => settleSession(t.db, job, FEE)));
  assert.is(results.filter((r) => r.applied).length, 1);
  for (const r of results) {
    assert.is(r.creditsRemaining, '98.0000');
    assert.is(r.charged, '2.0000');
  }
  const user = await t.db.selectFrom('user_profiles').selectAll().where('id', '=', parties.userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '98.0000');
  assert.is(user.credits_version, '1');
  const clone = await t.db.selectFrom('clones').selectAll().where('id', '=', parties.cloneId).executeTakeFirstOrThrow();
  assert.is(clone.total_sessions, '1');
  const entries = await t.db.selectFrom('ledger_entries').select('id').where('session_id', '=', header.sessionId).execute();
  assert.is(entries.length, 3);
});

test('concurrent settlements of different sessions of one user each charge once', async () => {
  const parties = await createParties(t.db, { credits: '10.0000' });
  const jobs = Array.from({ length: 8 }, () => settleJob(sessionHeader(parties), { totalCost: '1.2500' }));
  await Promise.all(jobs.map((job) => settleSession(t.db, job, FEE)));
  const user = await t.db.selectFrom('user_profiles').selectAll().where('id', '=', parties.userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, '0.0000');
  assert.is(user.total_spent, '10.0000');
  assert.is(user.credits_version, '8');
  const analytics = await t.db.selectFrom('creator_analytics').selectAll().where('clone_id', '=', parties.cloneId).executeTakeFirstOrThrow();
  assert.is(analytics.sessions_count, 8);
  assert.is(analytics.total_earnings, '8.0000');
});

test('a total above the credits is capped at the credits, and the cap is logged', async () => {
  const parties = await createParties(t.db, { credits: '0.5000' });
  const header = sessionHeader(parties);
  const warnings: object[] = [];
  const result = await settleSession(t.db, settleJob(header, { totalCost: '3.0000' }), FEE, {
    log: { warn: (context) => warnings.push(context) },
  });
  assert.is(result.charged, '0.5000');
  assert.is(result.platformFee, '0.1000');
  assert.is(result.creatorEarning, '0.4000');
  assert.is(result.creditsRemaining, '0.0000');
  assert.is(warnings.length, 1);
  const session = await t.db.selectFrom('sessions').select('total_cost').where('id', '=', header.sessionId).executeTakeFirstOrThrow();
  assert.is(session.total_cost, '0.5000');
  assert.is(await ledgerSum(header.sessionId), '0.0000');

  // With nothing left, the next session is charged 0 and still gets its (zero) ledger entries.
  const next = sessionHeader(parties);
  const empty = await settleSession(t.db, settleJob(next, { totalCost: '1.0000' }), FEE);
  assert.is(empty.charged, '0.0000');
  assert.is(empty.creditsVersion, result.creditsVersion, 'no balance change, no version bump');
  assert.is(Object.keys(await ledgerOf(next.sessionId)).length, 3);
});

test('a settlement keeps the newer live-state version', async () => {
  const parties = await createParties(t.db);
  const header = sessionHeader(parties);
  await t.db
    .insertInto('sessions')
    .values({ id: header.sessionId, user_id: parties.userId, clone_id: parties.cloneId, session_type: 'chat', status: 'paused', state_version: 12 })
    .execute();
  await settleSession(t.db, settleJob(header, { version: 7 }), FEE);
  const session = await t.db.selectFrom('sessions').selectAll().where('id', '=', header.sessionId).executeTakeFirstOrThrow();
  assert.is(session.state_version, 12);
  assert.is(session.status, 'ended');
});

test('a job whose header names another user than the stored session is refused', async () => {
  const parties = await createParties(t.db);
  const other = await createParties(t.db, { creatorId: parties.creatorId });
  const header = sessionHeader(parties);
  await settleSession(t.db, settleJob(header), FEE);
  try {
    await settleSession(t.db, settleJob({ ...header, userId: other.userId }), FEE);
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.instance(error, BillingJobError);
    assert.is((error as BillingJobError).code, 'session_mismatch');
  }
});

test('a job naming an unknown clone is refused as unknown_reference', async () => {
  const parties = await createParties(t.db);
  const header = sessionHeader({ ...parties, cloneId: '00000000-0000-4000-8000-00000000dead' });
  try {
    await settleSession(t.db, settleJob(header), FEE);
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.instance(error, BillingJobError);
    assert.is((error as BillingJobError).code, 'unknown_reference');
  }
});

test('retention: users returning on day two over users that day, computed per clone and UTC day', async () => {
  const a = await createParties(t.db);
  const { creatorId, cloneId } = a;
  const b = await createParties(t.db, { creatorId });
  const c = await createParties(t.db, { creatorId });
  // createParties also makes a clone per call; every session below is with a's clone.
  const onClone = (userId: string) => ({ userId, creatorId, cloneId });
  const settle = (userId: string, endTime: string) =>
    settleSession(t.db, settleJob(sessionHeader(onClone(userId)), { endTime, totalCost: '1.0000' }), FEE);
  const rate = async (date: string) =>
    (
      await t.db
        .selectFrom('creator_analytics')
        .select('user_retention_rate')
        .where('clone_id', '=', cloneId)
        .where('date', '=', date)
        .executeTakeFirstOrThrow()
    ).user_retention_rate;

  // Day 1: a and b.
  await settle(a.userId, '2025-04-01T09:00:00Z');
  await settle(b.userId, '2025-04-01T23:59:59Z');
  assert.is(await rate('2025-04-01'), '0.0000');
  // Day 2: a returns (twice), c is new.
  await settle(a.userId, '2025-04-02T08:00:00Z');
  assert.is(await rate('2025-04-02'), '1.0000');
  await settle(c.userId, '2025-04-02T10:00:00Z');
  assert.is(await rate('2025-04-02'), '0.5000');
  await settle(a.userId, '2025-04-02T11:00:00Z');
  assert.is(await rate('2025-04-02'), '0.5000', 'distinct users, not sessions');
  // 01:30+02:00 on the 2nd is still the 1st in UTC: b's second session counts on day 1, not day 2.
  await settle(b.userId, '2025-04-02T01:30:00+02:00');
  assert.is(await rate('2025-04-01'), '0.0000');
  assert.is(await rate('2025-04-02'), '0.5000');
  // A third user on day 2 who is new: 1 of 3 (rounded to four places).
  const d = await createParties(t.db, { creatorId });
  await settle(d.userId, '2025-04-02T12:00:00Z');
  assert.is(await rate('2025-04-02'), '0.3333');
  // A late settlement: d's session on day 1 arrives now; on day 2, a and d are returning: 2 of 3.
  await settle(d.userId, '2025-04-01T12:00:00Z');
  assert.is(await rate('2025-04-02'), '0.6667');
  assert.is(await rate('2025-04-01'), '0.0000');
  const day2 = await t.db
    .selectFrom('creator_analytics')
    .selectAll()
    .where('clone_id', '=', cloneId)
    .where('date', '=', '2025-04-02')
    .executeTakeFirstOrThrow();
  assert.is(day2.sessions_count, 4);
});

test('property: for any total and fee rate the ledger entries sum to zero and the fee rounds half-up', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 99_999_999_999_999n }),
      fc.integer({ min: 0, max: 10_000 }),
      (total, feeBasisPoints) => {
        const rate = { numerator: BigInt(feeBasisPoints), denominator: 10_000n };
        const split = splitTotal(total, rate);
        const entries = sessionLedgerEntries({ sessionId: 's', userId: 'u', creatorId: 'c' }, split);
        const sum = entries.reduce((acc, e) => acc + parseMoney(e.amount), 0n);
        // fee = round_half_up(total × bp / 10000), exactly
        const expectedFee = (total * BigInt(feeBasisPoints) * 2n + 10_000n) / 20_000n;
        return sum === 0n && split.platformFee === expectedFee && split.creatorEarning >= 0n;
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: settled in Postgres, random totals and rates keep the ledger balanced', async () => {
  const parties = await createParties(t.db, { credits: '99999999.0000' });
  await fc.assert(
    fc.asyncProperty(
      fc.bigInt({ min: 0n, max: 10_000_000_000n }),
      fc.constantFrom('0', '0.2', '0.15', '0.175', '0.3333', '1'),
      async (total, rateText) => {
        const header = sessionHeader(parties);
        const result = await settleSession(t.db, settleJob(header, { totalCost: formatMoney(total) }), parseRatio(rateText));
        const ledger = await ledgerOf(header.sessionId);
        const debit = -parseMoney(ledger.session_charge!.amount);
        const earning = parseMoney(ledger.creator_earning!.amount);
        const fee = parseMoney(ledger.platform_fee!.amount);
        return (
          (await ledgerSum(header.sessionId)) === '0.0000' &&
          debit === total &&
          debit === earning + fee &&
          result.platformFee === formatMoney(fee)
        );
      },
    ),
    { numRuns: 40 },
  );
  const { rows } = await sql<{ sum: string; sessions: string; debits: string; splits: string }>`
    SELECT sum(amount)::numeric(14,4) AS sum,
           (SELECT sum(total_cost) FROM sessions WHERE user_id = ${parties.userId})::numeric(14,4) AS sessions,
           (-sum(amount) FILTER (WHERE kind = 'session_charge'))::numeric(14,4) AS debits,
           (sum(amount) FILTER (WHERE kind <> 'session_charge'))::numeric(14,4) AS splits
    FROM ledger_entries l JOIN sessions s ON s.id = l.session_id WHERE s.user_id = ${parties.userId}
  `.execute(t.db);
  const totals = rows[0]!;
  assert.is(totals.sum, '0.0000');
  assert.is(totals.debits, totals.sessions);
  assert.is(totals.splits, totals.sessions);
});

test.run();
