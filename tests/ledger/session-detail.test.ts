import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMoney } from '#shared/money/money.ts';
import { activeIntervals, sessionCheck } from '#billing/ledger/session-check.ts';
import { createParties } from '../billing/fixtures.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;

test.before(async () => {
  h = await startLedgerApp();
});
test.after(async () => {
  await h?.close();
});

const at = (text: string) => new Date(text);

test('active intervals run from started/resumed to the next paused/ended, in version order', () => {
  const intervals = activeIntervals([
    { version: 3, kind: 'resumed', at: at('2025-03-01T10:06:00Z') },
    { version: 1, kind: 'started', at: at('2025-03-01T10:00:00Z') },
    { version: 2, kind: 'paused', at: at('2025-03-01T10:04:00Z') },
    { version: 4, kind: 'paused', at: at('2025-03-01T10:08:30Z') },
    { version: 5, kind: 'ended', at: at('2025-03-01T10:20:00Z') },
  ]);
  assert.equal(intervals, [
    { start: at('2025-03-01T10:00:00Z'), end: at('2025-03-01T10:04:00Z'), activeMs: 240_000 },
    { start: at('2025-03-01T10:06:00Z'), end: at('2025-03-01T10:08:30Z'), activeMs: 150_000 },
  ]);
  assert.equal(activeIntervals([{ version: 1, kind: 'started', at: at('2025-03-01T10:00:00Z') }]), [
    { start: at('2025-03-01T10:00:00Z'), end: null, activeMs: 0 },
  ]);
  assert.equal(activeIntervals([{ version: 7, kind: 'ended', at: at('2025-03-01T10:00:00Z') }]), []);
});

test('the check compares the charge with time at the rate over the intervals plus AI costs', () => {
  const base = {
    settled: true,
    endReason: 'user',
    ratePerMinute: parseMoney('1.5000'),
    billedActiveMs: 390_000n,
    intervals: [{ start: at('2025-03-01T10:00:00Z'), end: at('2025-03-01T10:06:30Z'), activeMs: 390_000 }],
    aiCost: parseMoney('0.0333'),
    charged: parseMoney('9.7833'),
    settlementSum: 0n,
    settlementEntries: 3,
    adjustmentSums: [],
    ledgerSum: 0n,
  };
  assert.equal(sessionCheck(base), {
    activeMsFromIntervals: 390_000,
    timeCost: '9.7500',
    aiCost: '0.0333',
    recomputedTotal: '9.7833',
    charged: '9.7833',
    difference: '0.0000',
    ledgerSum: '0.0000',
    balanced: true,
    consistent: true,
    note: 'the charge equals the recomputation from the audit trail',
  });
  const over = sessionCheck({ ...base, charged: parseMoney('9.7834') });
  assert.is(over.consistent, false);
  assert.is(over.difference, '0.0001');
  // the live state billed 6 minutes (9.0333 with the AI cost) and was charged that: the trail's 6.5 minutes disagree
  const underBilled = sessionCheck({ ...base, billedActiveMs: 360_000n, charged: parseMoney('9.0333') });
  assert.is(underBilled.consistent, false, 'less than the trail gives, and not capped, is not consistent either');
  assert.is(underBilled.difference, '-0.7500');
  assert.is(sessionCheck({ ...base, charged: parseMoney('9.0000'), endReason: 'credits_exhausted' }).consistent, true);
  const capped = sessionCheck({ ...base, charged: parseMoney('2.0000') });
  assert.is(capped.consistent, true, 'charged less than the live state asked: the settlement capped it');
  assert.match(capped.note, /capped at the user's credits when it was settled \(9\.7833 was due\)/);
  assert.is(sessionCheck({ ...base, settlementSum: 1n }).balanced, false);
  assert.is(sessionCheck({ ...base, settlementEntries: 2 }).balanced, false);
  assert.is(sessionCheck({ ...base, adjustmentSums: [0n, -1n] }).balanced, false);
});

test('the detail of a session with pauses and AI replies: events, intervals, messages, ledger, a consistent check', async () => {
  const parties = await createParties(h.database.db, { credits: '100.0000' });
  const { sessionId } = await settledSession(h.database, h.config, parties, {
    start: '2025-03-01T10:00:00.000Z',
    steps: [
      { status: 'active', at: '2025-03-01T10:00:00.000Z' },
      { status: 'paused', at: '2025-03-01T10:04:00.000Z' },
      { status: 'active', at: '2025-03-01T10:06:00.000Z' },
    ],
    end: '2025-03-01T10:08:30.123Z',
    rate: '1.2345',
    aiCosts: ['0.0125', '0.0300'],
  });
  const detail = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.equal(detail.events, [
    { version: 1, kind: 'started', at: '2025-03-01T10:00:00.000Z', activeMs: 0, reason: null },
    { version: 2, kind: 'paused', at: '2025-03-01T10:04:00.000Z', activeMs: 240_000, reason: null },
    { version: 3, kind: 'resumed', at: '2025-03-01T10:06:00.000Z', activeMs: 240_000, reason: null },
    { version: 4, kind: 'ended', at: '2025-03-01T10:08:30.123Z', activeMs: 390_123, reason: 'user' },
  ]);
  assert.equal(detail.intervals, [
    { start: '2025-03-01T10:00:00.000Z', end: '2025-03-01T10:04:00.000Z', activeMs: 240_000 },
    { start: '2025-03-01T10:06:00.000Z', end: '2025-03-01T10:08:30.123Z', activeMs: 150_123 },
  ]);
  assert.equal(
    detail.messages.map((m: { senderType: string; costIncrement: string; tokensUsed: number }) => [m.senderType, m.costIncrement, m.tokensUsed]),
    [['ai', '0.0125', 100], ['ai', '0.0300', 100]],
  );
  // 1.2345 × 390123 / 60000 = 8.02678... → 8.0268; + 0.0425
  assert.equal(detail.check, {
    activeMsFromIntervals: 390_123,
    timeCost: '8.0268',
    aiCost: '0.0425',
    recomputedTotal: '8.0693',
    charged: '8.0693',
    difference: '0.0000',
    ledgerSum: '0.0000',
    balanced: true,
    consistent: true,
    note: 'the charge equals the recomputation from the audit trail',
  });
  assert.is(detail.session.totalCost, '8.0693');
  assert.equal(
    detail.ledger.map((e: { kind: string; accountKind: string; accountId: string | null; amount: string; adjustmentId: null }) => [
      e.kind,
      e.accountKind,
      e.accountId,
      e.amount,
      e.adjustmentId,
    ]),
    [
      ['session_charge', 'user', parties.userId, '-8.0693', null],
      ['creator_earning', 'creator', parties.creatorId, '6.4554', null],
      ['platform_fee', 'platform', null, '1.6139', null],
    ],
  );
  assert.equal(detail.adjustments, []);
});

test('a session cut short by credits running out is consistent when charged less than the trail gives', async () => {
  const parties = await createParties(h.database.db, { credits: '100.0000' });
  const { sessionId } = await settledSession(h.database, h.config, parties, {
    reason: 'credits_exhausted',
    settle: { totalCost: '14.9999' },
  });
  const { check } = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.is(check.recomputedTotal, '15.0000');
  assert.is(check.charged, '14.9999');
  assert.is(check.difference, '-0.0001');
  assert.is(check.consistent, true);
  assert.match(check.note, /credits ran out/);
});

test('a charge the settlement capped at the credits left is consistent, and the note says what was due', async () => {
  const parties = await createParties(h.database.db, { credits: '4.2500' });
  const { sessionId, totalCost } = await settledSession(h.database, h.config, parties, {});
  assert.is(totalCost, '4.2500');
  const { check } = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.is(check.recomputedTotal, '15.0000');
  assert.is(check.charged, '4.2500');
  assert.is(check.consistent, true);
  assert.match(check.note, /capped at the user's credits.*15\.0000 was due/);
  assert.is(check.balanced, true);
});

test('a charge the audit trail does not support is flagged inconsistent', async () => {
  const parties = await createParties(h.database.db, { credits: '100.0000' });
  // billed 11 minutes for a 10-minute trail
  const { sessionId } = await settledSession(h.database, h.config, parties, {
    settle: { activeMs: 660_000, durationMinutes: 11, timeCost: '16.5000', totalCost: '16.5000' },
  });
  const { check } = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.is(check.recomputedTotal, '15.0000');
  assert.is(check.charged, '16.5000');
  assert.is(check.difference, '1.5000');
  assert.is(check.consistent, false);
  assert.match(check.note, /differs from the recomputation/);
});

test('a session settled by the reconciler after its live state was lost says its trail may be incomplete', async () => {
  const parties = await createParties(h.database.db, { credits: '100.0000' });
  const { sessionId } = await settledSession(h.database, h.config, parties, { reason: 'state_lost', noTrail: true });
  const detail = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.equal(detail.events.map((e: { kind: string }) => e.kind), ['ended']);
  assert.equal(detail.intervals, []);
  assert.is(detail.check.consistent, false);
  assert.match(detail.check.note, /live state was lost.*last checkpoint.*may be missing/);

  const withTrail = await settledSession(h.database, h.config, parties, { reason: 'state_lost' });
  const { check } = await h.getJson(`/api/ledger/sessions/${withTrail.sessionId}`);
  assert.is(check.consistent, true);
  assert.match(check.note, /may be missing/);
});

test.run();
