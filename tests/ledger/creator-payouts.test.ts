import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { createParties } from '../billing/fixtures.ts';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

// Creator payouts through Stripe Connect transfers: a run pays everything owed above the minimum, once per creator and
// period; a refused transfer or a reversed one restores what is owed; per creator earned − paid − pending = owed, to
// the last 0.0001, and the ledger says the same.

const WEBHOOK_SECRET = 'whsec_payouts_test';
let h: LedgerHarness;
let stripe: FakeStripe;

test.before(async () => {
  stripe = await startFakeStripe();
  h = await startLedgerApp({
    env: { STRIPE_SECRET_KEY: 'sk_test_payouts', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_URL: stripe.url, PAYOUT_MINIMUM: '5', CREDIT_CURRENCY: 'usd' },
  });
});
test.after(async () => {
  await h?.close();
  await stripe?.close();
});

/** A creator who earned from one settled session at `rate`/min for 10 minutes (80 % of it: PLATFORM_FEE_RATE 0.20). */
async function creatorWhoEarned(rate: string, account?: string): Promise<string> {
  const parties = await createParties(h.database.db, { credits: '1000.0000', rate });
  await settledSession(h.database, h.config, parties, { rate, start: new Date(Date.now() - 3_600_000).toISOString() });
  if (account) {
    const set = await h.request({ method: 'PUT', url: `/api/creators/${parties.creatorId}/payout-account`, payload: { stripeAccountId: account } });
    assert.is(set.statusCode, 200, set.body);
  }
  return parties.creatorId;
}

async function balanceOf(creatorId: string) {
  const { balances } = await h.getJson(`/api/payouts/balances?creatorId=${creatorId}`);
  return balances[0] as { earned: string; paid: string; pending: string; owed: string };
}

function assertBalanced(b: { earned: string; paid: string; pending: string; owed: string }): void {
  assert.is(formatMoney(parseMoney(b.earned) - parseMoney(b.paid) - parseMoney(b.pending)), b.owed, 'earned − paid − pending = owed');
}

async function run(period: string) {
  const response = await h.request({ method: 'POST', url: '/api/payouts/run', payload: { period } });
  assert.is(response.statusCode, 200, response.body);
  return response.json().payouts as Array<{ creatorId: string; status: string; credits: string; amountMinor: string; transferId: string | null; failure: string | null }>;
}

async function deliver(event: Parameters<FakeStripe['sign']>[0]) {
  const signed = stripe.sign(event, WEBHOOK_SECRET);
  return h.request({ method: 'POST', url: '/stripe/webhook', token: null, headers: { 'content-type': 'application/json', 'stripe-signature': signed.signature }, payload: signed.body });
}

test('a run pays each creator everything owed once per period, through a Connect transfer, and the ledger agrees', async () => {
  const paid = await creatorWhoEarned('1.2345', 'acct_paid1'); // 12.345 × 0.8 = 9.8760 owed
  const small = await creatorWhoEarned('0.5000', 'acct_small1'); // 4.0000 owed: below the minimum of 5
  const noAccount = await creatorWhoEarned('3.0000');
  const payouts = await run('2026-11');
  const mine = payouts.find((p) => p.creatorId === paid)!;
  // whole cents are paid (9.87), the 0.0060 left stays owed
  assert.equal({ status: mine.status, credits: mine.credits, amountMinor: mine.amountMinor }, { status: 'paid', credits: '9.8700', amountMinor: '987' });
  const made = stripe.transfers.get(mine.transferId!)!;
  assert.equal({ amount: made.amount, currency: made.currency, destination: made.destination }, { amount: 987, currency: 'usd', destination: 'acct_paid1' });
  assert.is(payouts.find((p) => p.creatorId === small), undefined, 'below the minimum');
  assert.is(payouts.find((p) => p.creatorId === noAccount), undefined, 'no payout account');
  const balance = await balanceOf(paid);
  assert.equal(balance, { creatorId: paid, earned: '9.8760', paid: '9.8700', pending: '0.0000', owed: '0.0060' } as typeof balance);
  assertBalanced(balance);
  // again for the same period: the same payout, no second transfer
  const transfersBefore = stripe.transfers.size;
  const again = await run('2026-11');
  assert.equal(again.find((p) => p.creatorId === paid), mine);
  assert.is(stripe.transfers.size, transfersBefore);
  // the payout's movement: creator −9.87 against cash, balanced
  const { rows } = await sql<{ entries: string }>`
    SELECT string_agg(e.account_kind || ':' || e.amount, ' ' ORDER BY e.account_kind) AS entries
    FROM money_movements m JOIN movement_entries e ON e.movement_id = m.id WHERE m.kind = 'payout' AND m.user_id = ${paid} GROUP BY m.id
  `.execute(h.database.db);
  assert.equal(rows, [{ entries: 'cash:9.8700 creator:-9.8700' }]);
});

test('a transfer Stripe refuses fails the payout and restores what is owed; a reversed transfer likewise, once', async () => {
  const refused = await creatorWhoEarned('2.0000', 'acct_refused1'); // 16 owed
  const reversed = await creatorWhoEarned('2.5000', 'acct_reversed1'); // 20 owed
  const payouts = await run('2026-10');
  const failed = payouts.find((p) => p.creatorId === refused)!;
  assert.is(failed.status, 'failed');
  assert.match(failed.failure!, /No such destination/);
  const refusedBalance = await balanceOf(refused);
  assert.equal([refusedBalance.paid, refusedBalance.pending, refusedBalance.owed], ['0.0000', '0.0000', '16.0000']);
  assertBalanced(refusedBalance);

  const ok = payouts.find((p) => p.creatorId === reversed)!;
  assert.is(ok.status, 'paid');
  const reversal = stripe.transferReversed(ok.transferId!);
  assert.is((await deliver(reversal)).statusCode, 200);
  assert.is((await deliver({ ...reversal, id: `${reversal.id}_again` } as typeof reversal)).statusCode, 200);
  const reversedBalance = await balanceOf(reversed);
  assert.equal([reversedBalance.paid, reversedBalance.owed], ['0.0000', '20.0000']);
  assertBalanced(reversedBalance);
  // the next period pays what is owed again (to a corrected account)
  assert.is((await h.request({ method: 'PUT', url: `/api/creators/${refused}/payout-account`, payload: { stripeAccountId: 'acct_fixed1' } })).statusCode, 200);
  const next = await run('2026-12');
  assert.is(next.find((p) => p.creatorId === refused)!.status, 'paid');
  assert.is((await balanceOf(refused)).owed, '0.0000');
});

test('a transfer with no answer stays pending and owed-but-pending; the next run retries it with the same key, once', async () => {
  const flaky = await creatorWhoEarned('1.0000', 'acct_flaky1'); // 8 owed
  stripe.healed = false;
  const first = (await run('2026-09')).find((p) => p.creatorId === flaky)!;
  assert.is(first.status, 'pending');
  const pending = await balanceOf(flaky);
  assert.equal([pending.paid, pending.pending, pending.owed], ['0.0000', '8.0000', '0.0000']);
  assertBalanced(pending);
  stripe.healed = true;
  const second = (await run('2026-09')).find((p) => p.creatorId === flaky)!;
  assert.is(second.status, 'paid');
  assert.is([...stripe.transfers.values()].filter((t) => t.destination === 'acct_flaky1').length, 1);
  const done = await balanceOf(flaky);
  assert.equal([done.paid, done.pending, done.owed], ['8.0000', '0.0000', '0.0000']);
});

test('payout runs racing each other for one period make one payout and one transfer per creator', async () => {
  const creator = await creatorWhoEarned('3.0000', 'acct_racing1'); // 24 owed
  const transfersBefore = stripe.transfers.size;
  const runs = await Promise.all([run('2026-07'), run('2026-07'), run('2026-07')]);
  assert.ok(runs.every((payouts) => payouts.some((p) => p.creatorId === creator)));
  assert.is(stripe.transfers.size, transfersBefore + 1);
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM payouts WHERE creator_id = ${creator}`.execute(h.database.db);
  assert.is(rows[0]!.n, 1);
  const balance = await balanceOf(creator);
  assert.equal([balance.paid, balance.pending, balance.owed], ['24.0000', '0.0000', '0.0000']);
});

test('payouts are for admins; bad periods and accounts are refused', async () => {
  const creator = await creatorWhoEarned('1.0000');
  assert.is((await h.request({ method: 'POST', url: '/api/payouts/run', payload: { period: '2026-13' } })).statusCode, 400);
  assert.is((await h.request({ method: 'PUT', url: `/api/creators/${creator}/payout-account`, payload: { stripeAccountId: 'not-an-account' } })).statusCode, 400);
  assert.is((await h.request({ method: 'PUT', url: `/api/creators/${randomUUID()}/payout-account`, payload: { stripeAccountId: 'acct_x' } })).statusCode, 404);
  const asCreator = await h.token(creator);
  assert.is((await h.request({ method: 'POST', url: '/api/payouts/run', token: asCreator, payload: { period: '2026-08' } })).statusCode, 403);
  assert.is((await h.request({ method: 'GET', url: '/api/payouts/balances', token: null })).statusCode, 401);
});

test.run();
