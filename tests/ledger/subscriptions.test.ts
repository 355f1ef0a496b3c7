import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts';
import { createUser, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

// Subscriptions through Stripe: the subscription's events set the user's tier (the newest event wins), each paid
// invoice grants the tier's monthly credits once, in the ledger. The real SDK against a local Stripe.

const WEBHOOK_SECRET = 'whsec_subscriptions_test';
let h: LedgerHarness;
let stripe: FakeStripe;

test.before(async () => {
  stripe = await startFakeStripe();
  h = await startLedgerApp({
    env: {
      STRIPE_SECRET_KEY: 'sk_test_subscriptions',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: stripe.url,
      SUBSCRIPTION_PLANS: 'pro:price_pro:300:0.10,enterprise:price_ent:3000:0.25',
    },
  });
});
test.after(async () => {
  await h?.close();
  await stripe?.close();
});

async function deliver(event: Parameters<FakeStripe['sign']>[0]) {
  const signed = stripe.sign(event, WEBHOOK_SECRET);
  return h.request({ method: 'POST', url: '/stripe/webhook', token: null, headers: { 'content-type': 'application/json', 'stripe-signature': signed.signature }, payload: signed.body });
}

const profileOf = (userId: string) => h.database.db.selectFrom('user_profiles').select(['subscription_tier', 'credits_remaining']).where('id', '=', userId).executeTakeFirstOrThrow();

async function grantsOf(userId: string) {
  const { rows } = await sql<{ reference: string; credits: string; amount_minor: string; entries: string }>`
    SELECT m.reference, m.credits::text, m.amount_minor::text,
           (SELECT string_agg(account_kind || ':' || amount, ' ' ORDER BY account_kind) FROM movement_entries e WHERE e.movement_id = m.id) AS entries
    FROM money_movements m WHERE m.user_id = ${userId} AND m.kind = 'grant' ORDER BY m.created_at
  `.execute(h.database.db);
  return rows;
}

test('a signed-in user starts a subscription checkout for a paid tier', async () => {
  const userId = await createUser(h.database);
  const started = await h.request({ method: 'POST', url: '/api/subscriptions/checkout', token: await h.token(userId), payload: { tier: 'pro', idempotencyKey: 'sub-1' } });
  assert.is(started.statusCode, 201, started.body);
  const session = stripe.sessions.get(started.json().checkout.checkoutSessionId)!;
  assert.is(session.mode, 'subscription');
  assert.equal(session.metadata, { user_id: userId, tier: 'pro' });
  const again = await h.request({ method: 'POST', url: '/api/subscriptions/checkout', token: await h.token(userId), payload: { tier: 'pro', idempotencyKey: 'sub-1' } });
  assert.is(again.json().checkout.checkoutSessionId, session.id, 'the same key is the same Checkout Session');
  assert.is((await h.request({ method: 'POST', url: '/api/subscriptions/checkout', token: await h.token(userId), payload: { tier: 'free' } })).statusCode, 400);
  assert.is((await h.request({ method: 'POST', url: '/api/subscriptions/checkout', token: null, payload: { tier: 'pro' } })).statusCode, 401);
});

test('subscription events set the tier; an older event delivered late changes nothing; cancelling makes the user free', async () => {
  const userId = await createUser(h.database);
  const now = Math.floor(Date.now() / 1000);
  const id = `sub_${userId.slice(0, 8)}`;
  assert.is((await deliver(stripe.subscription('customer.subscription.created', { id, userId, priceId: 'price_pro', status: 'active', created: now }))).statusCode, 200);
  assert.is((await profileOf(userId)).subscription_tier, 'pro');
  assert.is((await deliver(stripe.subscription('customer.subscription.updated', { id, userId, priceId: 'price_ent', status: 'active', created: now + 10 }))).statusCode, 200);
  assert.is((await profileOf(userId)).subscription_tier, 'enterprise');
  // an update from before that one, delivered late
  assert.is((await deliver(stripe.subscription('customer.subscription.updated', { id, userId, priceId: 'price_pro', status: 'active', created: now + 5 }))).statusCode, 200);
  assert.is((await profileOf(userId)).subscription_tier, 'enterprise');
  assert.is((await deliver(stripe.subscription('customer.subscription.deleted', { id, userId, priceId: 'price_ent', status: 'canceled', created: now + 20 }))).statusCode, 200);
  assert.is((await profileOf(userId)).subscription_tier, 'free');
  // a subscription to a price that is no plan here, or of no user of ours: recorded, nothing changes
  assert.is((await deliver(stripe.subscription('customer.subscription.created', { id: `${id}_x`, userId, priceId: 'price_other', status: 'active' }))).statusCode, 200);
  assert.is((await profileOf(userId)).subscription_tier, 'free');
});

test('each paid invoice grants the tier\'s monthly credits once, in the ledger; an invoice before its subscription is retried', async () => {
  const userId = await createUser(h.database, 'user', '10.0000');
  const subscriptionId = `sub_${userId.slice(0, 8)}_grants`;
  const first = stripe.invoicePaid({ subscriptionId, userId, amountPaid: 1500, id: `in_${userId.slice(0, 8)}_1` });
  assert.is((await deliver(first)).statusCode, 503, 'the subscription is not known yet');
  assert.is((await deliver(stripe.subscription('customer.subscription.created', { id: subscriptionId, userId, priceId: 'price_pro', status: 'active' }))).statusCode, 200);
  assert.is((await deliver(first)).statusCode, 200);
  assert.is((await deliver(first)).statusCode, 200);
  // the same invoice in another event: still once
  assert.is((await deliver({ ...first, id: `${first.id}_again` } as typeof first)).statusCode, 200);
  assert.is((await profileOf(userId)).credits_remaining, '310.0000');
  assert.is((await deliver(stripe.invoicePaid({ subscriptionId, userId, amountPaid: 1500, id: `in_${userId.slice(0, 8)}_2` }))).statusCode, 200);
  assert.is((await profileOf(userId)).credits_remaining, '610.0000');
  assert.equal((await grantsOf(userId)).map((g) => [g.credits, g.amount_minor, g.entries]), [
    ['300.0000', '1500', 'platform:-300.0000 user:300.0000'],
    ['300.0000', '1500', 'platform:-300.0000 user:300.0000'],
  ]);
  const reconciliation = await h.getJson('/api/ledger/reconciliation');
  assert.equal(reconciliation.creditMismatches, []);
  assert.equal([reconciliation.payments.subscriptionCashMinor, reconciliation.payments.grantedCredits], ['3000', '600.0000']);
  // an invoice of a subscription that is not ours is recorded and grants nothing
  assert.is((await deliver(stripe.invoicePaid({ subscriptionId: 'sub_someone_else', userId: 'not-a-uuid', amountPaid: 100 }))).statusCode, 200);
});

test.run();
