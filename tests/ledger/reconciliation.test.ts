import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { createParties, sessionHeader, stateJob, applySessionState } from '../billing/fixtures.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;

test.before(async () => {
  h = await startLedgerApp();
});
test.after(async () => {
  await h?.close();
});

test('an empty ledger reconciles', async () => {
  assert.equal(await h.getJson('/api/ledger/reconciliation'), {
    ok: true,
    days: [],
    totals: {
      sessions: 0,
      sessionTotals: '0.0000',
      userDebits: '0.0000',
      creatorEarnings: '0.0000',
      platformFees: '0.0000',
      adjustments: '0.0000',
      unbalancedSessions: 0,
      balanced: true,
    },
    openSessions: 0,
    endedUnsettled: [],
    unbalancedSessions: [],
    balanceMismatches: [],
    messageCountMismatches: [],
    failedJobs: [],
    creditMismatches: [],
    // the harness's admin: the credits a profile is created with enter the ledger with it
    payments: { purchases: 0, cashInMinor: '0', cashOutMinor: '0', creditsSold: '0.0000', creditsTakenBack: '0.0000', platformLoss: '0.0000', openingCredits: '100.0000', subscriptionCashMinor: '0', grantedCredits: '0.0000' },
    unbalancedMovements: [],
  });
});

test('a clean ledger: per-day sums by UTC day of end_time, exact, and totals over the range', async () => {
  const a = await createParties(h.database.db, { credits: '1000.0000' });
  const b = await createParties(h.database.db, { credits: '1000.0000' });
  // day 1: 15.0000 (a) + 7.4074 (b, rate 1.2345 × 6 min); day 2 (23:59:59.999 → still day 2): 0.0003 + AI 0.0001
  await settledSession(h.database, h.config, a, { start: '2025-05-01T08:00:00.000Z' });
  await settledSession(h.database, h.config, b, { start: '2025-05-01T23:50:00.000Z', end: '2025-05-01T23:56:00.000Z', rate: '1.2345' });
  await settledSession(h.database, h.config, a, {
    start: '2025-05-02T23:59:59.987Z',
    end: '2025-05-02T23:59:59.999Z',
    rate: '1.5000',
    aiCosts: ['0.0001'],
  });
  // outside the range
  await settledSession(h.database, h.config, b, { start: '2025-05-03T00:00:00.000Z' });

  const report = await h.getJson('/api/ledger/reconciliation?from=2025-05-01&to=2025-05-03');
  assert.is(report.ok, true);
  assert.equal(report.days, [
    {
      date: '2025-05-01',
      sessions: 2,
      sessionTotals: '22.4070',
      userDebits: '22.4070',
      creatorEarnings: '17.9256',
      platformFees: '4.4814',
      adjustments: '0.0000',
      unbalancedSessions: 0,
      balanced: true,
    },
    {
      date: '2025-05-02',
      sessions: 1,
      sessionTotals: '0.0004',
      userDebits: '0.0004',
      creatorEarnings: '0.0003',
      platformFees: '0.0001',
      adjustments: '0.0000',
      unbalancedSessions: 0,
      balanced: true,
    },
  ]);
  assert.equal(report.totals, {
    sessions: 3,
    sessionTotals: '22.4074',
    userDebits: '22.4074',
    creatorEarnings: '17.9259',
    platformFees: '4.4815',
    adjustments: '0.0000',
    unbalancedSessions: 0,
    balanced: true,
  });
  const all = await h.getJson('/api/ledger/reconciliation');
  assert.is(all.days.length, 3);
  assert.is(all.totals.sessions, 4);
  const datetime = await h.getJson('/api/ledger/reconciliation?from=2025-05-01T23:56:00Z&to=2025-05-02T23:59:59.999Z');
  assert.is(datetime.totals.sessions, 1, 'from inclusive, to exclusive');
});

test('adjustments to users are summed on the day the session ended', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, { start: '2025-06-10T10:00:00.000Z' });
  const post = (amount: string) =>
    h.request({ method: 'POST', url: '/api/ledger/adjustments', payload: { idempotencyKey: randomUUID(), sessionId, amount, reason: 'test' } });
  assert.is((await post('3.0000')).statusCode, 201);
  assert.is((await post('-0.5000')).statusCode, 201);
  const report = await h.getJson('/api/ledger/reconciliation?from=2025-06-10&to=2025-06-11');
  assert.is(report.ok, true);
  assert.is(report.days[0].adjustments, '2.5000');
  assert.is(report.days[0].userDebits, '15.0000', 'the settlement debit, before adjustments');
  assert.is(report.days[0].balanced, true);
});

test('open sessions are counted; an ended session left unsettled is listed, and fails the check once 5 minutes old', async () => {
  const parties = await createParties(h.database.db);
  const open = sessionHeader(parties);
  await applySessionState(h.database.db, stateJob(open, { status: 'active', version: 1 }));
  const paused = sessionHeader(parties);
  await applySessionState(h.database.db, stateJob(paused, { status: 'paused', version: 2 }));
  const justEnded = sessionHeader(parties);
  await applySessionState(h.database.db, stateJob(justEnded, { status: 'ended', version: 3, at: new Date().toISOString() }));

  let report = await h.getJson('/api/ledger/reconciliation');
  assert.is(report.openSessions, 2);
  assert.equal(report.endedUnsettled, [justEnded.sessionId]);
  assert.is(report.ok, true, 'ended a moment ago: its settlement may still be on its way');

  const longAgo = sessionHeader(parties);
  await applySessionState(h.database.db, stateJob(longAgo, { status: 'ended', version: 3, at: new Date(Date.now() - 6 * 60_000).toISOString() }));
  // its row was written just now: only the ended event says when it ended
  report = await h.getJson('/api/ledger/reconciliation');
  assert.equal(report.endedUnsettled, [justEnded.sessionId, longAgo.sessionId].sort());
  assert.is(report.ok, false);

  // settle both so the later tests start clean
  for (const header of [justEnded, longAgo]) {
    const { settleSession } = await import('#billing/settle/settle-session.ts');
    const { settleJob } = await import('../billing/fixtures.ts');
    await settleSession(h.database.db, settleJob(header, { version: 4 }), h.config.platformFeeRate);
  }
  report = await h.getJson('/api/ledger/reconciliation');
  assert.equal(report.endedUnsettled, []);
  assert.is(report.ok, true);
});

test('a settlement whose entries do not sum to zero is found, on its day and in the list', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, { start: '2025-07-04T10:00:00.000Z' });
  const fine = await settledSession(h.database, h.config, parties, { start: '2025-07-04T12:00:00.000Z' });
  // tamper as only a superuser could: the append-only trigger off for one statement
  await sql`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`.execute(h.database.db);
  try {
    await sql`UPDATE ledger_entries SET amount = amount + 0.0001 WHERE session_id = ${sessionId} AND kind = 'platform_fee'`.execute(h.database.db);
  } finally {
    await sql`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only`.execute(h.database.db);
  }
  const report = await h.getJson('/api/ledger/reconciliation?from=2025-07-04&to=2025-07-05');
  assert.is(report.ok, false);
  assert.equal(report.unbalancedSessions, [sessionId]);
  assert.is(report.days[0].unbalancedSessions, 1);
  assert.is(report.days[0].balanced, false);
  assert.is(report.totals.balanced, false);
  assert.is(report.days[0].platformFees, '6.0001');
  const detail = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.is(detail.check.balanced, false);
  assert.is(detail.check.ledgerSum, '0.0001');
  assert.is((await h.getJson(`/api/ledger/sessions/${fine.sessionId}`)).check.balanced, true);
  const elsewhere = await h.getJson('/api/ledger/reconciliation?from=2025-07-05');
  assert.equal(elsewhere.unbalancedSessions, [], 'outside the range');
});

test('a debit that is not the session total, or a missing entry, is unbalanced', async () => {
  const parties = await createParties(h.database.db);
  const a = await settledSession(h.database, h.config, parties, { start: '2025-08-01T10:00:00.000Z' });
  const b = await settledSession(h.database, h.config, parties, { start: '2025-08-01T11:00:00.000Z' });
  await sql`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`.execute(h.database.db);
  try {
    await sql`UPDATE sessions SET total_cost = total_cost + 1 WHERE id = ${a.sessionId}`.execute(h.database.db);
    await sql`DELETE FROM ledger_entries WHERE session_id = ${b.sessionId}`.execute(h.database.db);
  } finally {
    await sql`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only`.execute(h.database.db);
  }
  const report = await h.getJson('/api/ledger/reconciliation?from=2025-08-01&to=2025-08-02');
  assert.equal(report.unbalancedSessions, [a.sessionId, b.sessionId].sort());
  assert.is(report.ok, false);
  // b's missing debit also leaves the user's total_spent above their ledger
  const mismatch = report.balanceMismatches.find((m: { userId: string }) => m.userId === parties.userId);
  assert.equal(mismatch, { userId: parties.userId, totalSpent: '30.0000', ledgerSpent: '15.0000', difference: '15.0000' });
});

test('a user whose total_spent does not match the ledger is a balance mismatch', async () => {
  const parties = await createParties(h.database.db);
  await settledSession(h.database, h.config, parties, { start: '2025-09-01T10:00:00.000Z' });
  await sql`UPDATE user_profiles SET total_spent = total_spent - 0.0001 WHERE id = ${parties.userId}`.execute(h.database.db);
  const report = await h.getJson('/api/ledger/reconciliation?from=2025-09-01&to=2025-09-02');
  assert.is(report.ok, false);
  assert.equal(report.unbalancedSessions, []);
  assert.ok(
    report.balanceMismatches.some(
      (m: { userId: string; difference: string }) => m.userId === parties.userId && m.difference === '-0.0001',
    ),
  );
});

test.run();
