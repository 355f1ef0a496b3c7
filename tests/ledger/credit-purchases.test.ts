import { sql } from 'kysely';
import { parseMoney } from '#shared/money/money.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createParties } from '../billing/fixtures.ts';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts';
import { ledgerCreditsOf } from '../support/ledger-credits.ts';
import { createUser, settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

// Credit purchases through Stripe, end to end on the billing app: the real SDK against a local server speaking
// Stripe's wire format, webhooks signed with Stripe's scheme, real Postgres. Every credit that moves is in the ledger.

const WEBHOOK_SECRET = 'whsec_test_0123456789abcdef';
let h: LedgerHarness;
let stripe: FakeStripe;
const refreshed: string[] = [];

test.before(async () => {
  stripe = await startFakeStripe();
  h = await startLedgerApp({
    env: {
      STRIPE_SECRET_KEY: 'sk_test_tollgate',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: stripe.url,
      CREDIT_PACKS: 'small:500:50,medium:2000:220',
      CREDIT_CURRENCY: 'eur',
    },
    onBalanceChanged: async (userId) => {
      refreshed.push(userId);
    },
  });
});
test.after(async () => {
  await h?.close();
  await stripe?.close();
});

async function checkout(userId: string, body: Record<string, unknown>) {
  return h.request({ method: 'POST', url: '/api/credits/checkout', token: await h.token(userId), payload: body });
}

async function deliver(event: Parameters<FakeStripe['sign']>[0], options: { secret?: string; timestamp?: number; alter?: (body: string) => string } = {}) {
  const signed = stripe.sign(event, options.secret ?? WEBHOOK_SECRET, options.timestamp);
  return h.request({
    method: 'POST',
    url: '/stripe/webhook',
    token: null,
    headers: { 'content-type': 'application/json', 'stripe-signature': signed.signature },
    payload: options.alter ? options.alter(signed.body) : signed.body,
  });
}

async function creditsOf(userId: string): Promise<string> {
  return (await h.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow()).credits_remaining;
}

async function movementsOf(userId: string) {
  const { rows } = await sql<{ kind: string; credits: string; amount_minor: string; balanced: boolean; entries: string }>`
    SELECT m.kind, m.credits, m.amount_minor::text, (SELECT sum(amount) = 0 FROM movement_entries WHERE movement_id = m.id) AS balanced,
           (SELECT string_agg(account_kind || ':' || kind || ':' || amount, ' ' ORDER BY account_kind, kind) FROM movement_entries WHERE movement_id = m.id) AS entries
    FROM money_movements m WHERE m.user_id = ${userId} ORDER BY m.created_at, m.kind
  `.execute(h.database.db);
  return rows;
}

async function buy(userId: string, packId = 'medium'): Promise<string> {
  const response = await checkout(userId, { packId });
  assert.is(response.statusCode, 201, response.body);
  return response.json().checkout.checkoutSessionId as string;
}

test('the packs on sale are listed; every profile starts with its credits in the ledger', async () => {
  const packs = await h.request({ method: 'GET', url: '/api/credits/packs', token: null });
  assert.equal(packs.json(), { currency: 'eur', packs: [{ id: 'small', priceMinor: '500', credits: '50.0000' }, { id: 'medium', priceMinor: '2000', credits: '220.0000' }] });
  const userId = await createUser(h.database, 'user', '100.0000');
  assert.equal((await movementsOf(userId)).map((m) => [m.kind, m.credits, m.balanced]), [['opening_balance', '100.0000', true]]);
  assert.is(await ledgerCreditsOf(h.database.db, userId), '100.0000');
});

test('a signed-in user starts a checkout: a Stripe Checkout Session for the pack, once per idempotency key', async () => {
  const userId = await createUser(h.database);
  const unauthenticated = await h.request({ method: 'POST', url: '/api/credits/checkout', token: null, payload: { packId: 'small' } });
  assert.is(unauthenticated.statusCode, 401);
  const before = stripe.sessions.size;
  const first = await checkout(userId, { packId: 'small', idempotencyKey: 'buy-1' });
  assert.is(first.statusCode, 201, first.body);
  const { checkout: view } = first.json();
  assert.match(view.url, /^https:\/\/checkout\.stripe\.test\//);
  assert.equal({ packId: view.packId, credits: view.credits, amountMinor: view.amountMinor, currency: view.currency, status: view.status }, { packId: 'small', credits: '50.0000', amountMinor: '500', currency: 'eur', status: 'pending' });
  const session = stripe.sessions.get(view.checkoutSessionId)!;
  assert.equal(session.metadata, { tollgate_purchase_id: view.purchaseId, user_id: userId, pack_id: 'small' });
  assert.is(session.amount_total, 500);
  assert.is(session.currency, 'eur');
  // a retry answers the same purchase; Stripe was asked once
  const retry = await checkout(userId, { packId: 'small', idempotencyKey: 'buy-1' });
  assert.is(retry.statusCode, 200);
  assert.equal(retry.json().checkout, view);
  assert.is(stripe.sessions.size, before + 1);
  assert.is((await checkout(userId, { packId: 'medium', idempotencyKey: 'buy-1' })).statusCode, 400, 'the key of another pack');
  const unknown = await checkout(userId, { packId: 'gold' });
  assert.is(unknown.statusCode, 400);
  assert.is(unknown.json().error.code, 'invalid_payload');
  assert.is((await checkout(userId, { packId: 'small', extra: 1 })).statusCode, 400);
  assert.is(await creditsOf(userId), '100.0000', 'nothing is credited before payment');
});

test('a webhook that is unsigned, signed with another secret, stale or altered is 400 and changes nothing', async () => {
  const userId = await createUser(h.database);
  const sessionId = await buy(userId);
  const event = stripe.completed(sessionId);
  const unsigned = await h.request({ method: 'POST', url: '/stripe/webhook', token: null, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(event) });
  assert.is(unsigned.statusCode, 400);
  assert.is((await deliver(event, { secret: 'whsec_someone_else' })).statusCode, 400);
  assert.is((await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 600 })).statusCode, 400, 'ten minutes old');
  const altered = await deliver(event, { alter: (body) => body.replace('"amount_total":2000', '"amount_total":1') });
  assert.is(altered.statusCode, 400);
  assert.is(altered.json().error.code, 'invalid_payload');
  assert.is((await deliver('not json at all')).statusCode, 400);
  assert.is(await creditsOf(userId), '100.0000');
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM stripe_events WHERE id = ${event.id}`.execute(h.database.db);
  assert.is(rows[0]!.n, 0);
});

test('a paid checkout credits the user once, whatever the number of deliveries or events, balanced in the ledger', async () => {
  const userId = await createUser(h.database);
  const sessionId = await buy(userId);
  const completed = stripe.completed(sessionId);
  refreshed.length = 0;
  for (let i = 0; i < 3; i++) assert.is((await deliver(completed)).statusCode, 200);
  // another event about the same payment: still one purchase
  assert.is((await deliver({ ...completed, id: `${completed.id}_async`, type: 'checkout.session.async_payment_succeeded' } as typeof completed)).statusCode, 200);
  assert.is(await creditsOf(userId), '320.0000');
  assert.is(await ledgerCreditsOf(h.database.db, userId), '320.0000');
  const movements = await movementsOf(userId);
  assert.equal(movements.map((m) => [m.kind, m.credits, m.amount_minor, m.balanced, m.entries]), [
    ['opening_balance', '100.0000', '0', true, 'platform:opening_balance:-100.0000 user:opening_balance:100.0000'],
    ['purchase', '220.0000', '2000', true, 'cash:purchase:-220.0000 user:purchase:220.0000'],
  ]);
  assert.equal(refreshed, [userId], 'the live balance was refreshed once');
  const purchase = await h.database.db.selectFrom('credit_purchases').selectAll().where('checkout_session_id', '=', sessionId).executeTakeFirstOrThrow();
  assert.is(purchase.status, 'paid');
  assert.ok(purchase.payment_intent_id?.startsWith('pi_'));
});

test('deliveries racing each other (the same event, and another event of the same payment) credit once', async () => {
  const userId = await createUser(h.database);
  const sessionId = await buy(userId);
  const completed = stripe.completed(sessionId);
  const asyncPaid = { ...completed, id: `${completed.id}_async`, type: 'checkout.session.async_payment_succeeded' } as typeof completed;
  const answers = await Promise.all([...Array.from({ length: 6 }, () => deliver(completed)), deliver(asyncPaid), deliver(asyncPaid)]);
  assert.equal(answers.map((a) => a.statusCode), [200, 200, 200, 200, 200, 200, 200, 200]);
  assert.is(await creditsOf(userId), '320.0000');
  assert.is((await movementsOf(userId)).filter((m) => m.kind === 'purchase').length, 1);
});

test('a paid checkout of another amount than its pack grants nothing (recorded, for a person to look at)', async () => {
  const userId = await createUser(h.database);
  const sessionId = await buy(userId);
  const completed = stripe.completed(sessionId);
  (completed.data.object as { amount_total: number }).amount_total = 1;
  assert.is((await deliver(completed)).statusCode, 200);
  assert.is(await creditsOf(userId), '100.0000');
  const purchase = await h.database.db.selectFrom('credit_purchases').select('status').where('checkout_session_id', '=', sessionId).executeTakeFirstOrThrow();
  assert.is(purchase.status, 'pending');
});

test('a refund delivered before its payment is answered 503 and applied once the payment is', async () => {
  const userId = await createUser(h.database);
  const sessionId = await buy(userId);
  const completed = stripe.completed(sessionId);
  // the payment must be known to Stripe's objects before the refund names its intent
  const refund = stripe.refunded(sessionId, 2000);
  const early = await deliver(refund);
  assert.is(early.statusCode, 503);
  assert.is(await creditsOf(userId), '100.0000');
  assert.is((await deliver(completed)).statusCode, 200);
  assert.is(await creditsOf(userId), '320.0000');
  assert.is((await deliver(refund)).statusCode, 200, 'Stripe delivers it again');
  assert.is((await deliver(refund)).statusCode, 200);
  assert.is(await creditsOf(userId), '100.0000');
  assert.is(await ledgerCreditsOf(h.database.db, userId), '100.0000');
});

test('refunds take back unspent credits, never below zero; what was spent is the platform\'s loss; disputes likewise', async () => {
  const parties = await createParties(h.database.db, { credits: '0.0000' });
  const userId = parties.userId;
  const sessionId = await buy(userId);
  assert.is((await deliver(stripe.completed(sessionId))).statusCode, 200);
  assert.is(await creditsOf(userId), '220.0000');
  // a refund of a quarter while nothing is spent: 55 credits back
  assert.is((await deliver(stripe.refunded(sessionId, 500))).statusCode, 200);
  assert.is(await creditsOf(userId), '165.0000');
  // the user spends 150 of the rest in a session (settled through the real billing path)
  await settledSession(h.database, h.config, parties, { rate: '15.0000' });
  assert.is(await creditsOf(userId), '15.0000');
  // refunded up to 1,500 of 2,000: 110 credits more, of which 15 can be taken back and 95 were spent
  assert.is((await deliver(stripe.refunded(sessionId, 1500))).statusCode, 200);
  assert.is(await creditsOf(userId), '0.0000');
  // then a dispute over the remaining 500: 55 credits, all spent
  assert.is((await deliver(stripe.disputed(sessionId, 500))).statusCode, 200);
  assert.is(await creditsOf(userId), '0.0000');
  // a dispute over more than is left reverses nothing more
  assert.is((await deliver(stripe.disputed(sessionId, 500))).statusCode, 200);
  // the staff API lists the same, newest first, each with its entries
  const listed = (await h.getJson(`/api/ledger/movements?userId=${userId}`)).movements as Array<{ kind: string; credits: string; entries: Array<{ amount: string }> }>;
  // (a profile made with no credits has no opening balance; the dispute over what was already reversed moved nothing)
  assert.equal(listed.map((m) => m.kind), ['dispute', 'card_refund', 'card_refund', 'purchase']);
  for (const m of listed) assert.is(m.entries.reduce((sum, e) => sum + parseMoney(e.amount), 0n), 0n, `${m.kind} balances`);
  const movements = (await movementsOf(userId)).filter((m) => m.kind !== 'opening_balance');
  assert.equal(movements.map((m) => [m.kind, m.credits, m.amount_minor, m.balanced, m.entries]), [
    ['purchase', '220.0000', '2000', true, 'cash:purchase:-220.0000 user:purchase:220.0000'],
    ['card_refund', '-55.0000', '500', true, 'cash:card_refund:55.0000 user:card_refund:-55.0000'],
    ['card_refund', '-15.0000', '1000', true, 'cash:card_refund:110.0000 platform:platform_loss:-95.0000 user:card_refund:-15.0000'],
    ['dispute', '0.0000', '500', true, 'cash:dispute:55.0000 platform:platform_loss:-55.0000'],
  ]);
  // cash: 2,000 in, 2,000 out; the credits sold all came back to the cash account
  const { rows } = await sql<{ cash: string }>`
    SELECT sum(e.amount)::text AS cash FROM movement_entries e JOIN money_movements m ON m.id = e.movement_id
    WHERE m.user_id = ${userId} AND e.account_kind = 'cash'
  `.execute(h.database.db);
  assert.is(rows[0]!.cash, '0.0000');
  assert.is(await ledgerCreditsOf(h.database.db, userId), '0.0000');
  const purchase = await h.database.db.selectFrom('credit_purchases').select(['status', 'reversed_minor']).where('checkout_session_id', '=', sessionId).executeTakeFirstOrThrow();
  assert.equal(purchase, { status: 'disputed', reversed_minor: '2000' });
});

test('events about payments that are not ours, and other event types, are recorded and change nothing', async () => {
  const userId = await createUser(h.database);
  const foreign = stripe.completed(await buy(userId));
  // the same event about a session we never stored
  const notOurs = JSON.parse(JSON.stringify(foreign)) as typeof foreign;
  (notOurs.data.object as { id: string }).id = 'cs_test_someone_elses';
  notOurs.id = `${foreign.id}_other`;
  assert.is((await deliver(notOurs)).statusCode, 200);
  assert.is((await deliver({ ...foreign, id: `${foreign.id}_x`, type: 'customer.created' } as typeof foreign)).statusCode, 200);
  assert.is(await creditsOf(userId), '100.0000');
});

test('the reconciliation explains every balance from the ledger and sums the money in and out; a balance written by hand is a mismatch', async () => {
  const reconciliation = await h.getJson('/api/ledger/reconciliation');
  assert.equal(reconciliation.creditMismatches, []);
  assert.equal(reconciliation.unbalancedMovements, []);
  const { payments } = reconciliation;
  // what the tests above bought, refunded and disputed
  const { rows } = await sql<{ cash_in: string; cash_out: string; purchases: number }>`
    SELECT coalesce(sum(amount_minor) FILTER (WHERE status <> 'pending'), 0)::text AS cash_in, coalesce(sum(reversed_minor), 0)::text AS cash_out,
           count(*) FILTER (WHERE status <> 'pending')::int AS purchases
    FROM credit_purchases
  `.execute(h.database.db);
  assert.equal({ purchases: payments.purchases, cashInMinor: payments.cashInMinor, cashOutMinor: payments.cashOutMinor }, { purchases: rows[0]!.purchases, cashInMinor: rows[0]!.cash_in, cashOutMinor: rows[0]!.cash_out });
  assert.is(payments.platformLoss, '150.0000');

  const userId = await createUser(h.database);
  await h.database.db.updateTable('user_profiles').set({ credits_remaining: '1000000.0000' }).where('id', '=', userId).execute();
  const after = await h.getJson('/api/ledger/reconciliation');
  assert.is(after.ok, false);
  assert.equal(after.creditMismatches, [{ userId, creditsRemaining: '1000000.0000', ledgerCredits: '100.0000', difference: '999900.0000' }]);
  await h.database.db.updateTable('user_profiles').set({ credits_remaining: '100.0000' }).where('id', '=', userId).execute();
});

test('without Stripe configured, checkouts and webhooks answer unavailable', async () => {
  const bare = await startLedgerApp();
  try {
    const userId = await createUser(bare.database);
    const started = await bare.request({ method: 'POST', url: '/api/credits/checkout', token: await bare.token(userId), payload: { packId: 'small' } });
    assert.is(started.statusCode, 503);
    assert.is(started.json().error.code, 'unavailable');
    const hook = await bare.request({ method: 'POST', url: '/stripe/webhook', token: null, headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=x' }, payload: '{}' });
    assert.is(hook.statusCode, 503);
  } finally {
    await bare.close();
  }
});

test.run();
