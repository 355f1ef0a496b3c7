import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FastifyInstance } from 'fastify';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts';
import { ledgerCreditsOf } from '../support/ledger-credits.ts';
import { billingAppOf, createClone, createUser, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// A purchase during a live session counts at once: the webhook's settlement raises the balance the gateway meters
// against, so a session about to run out goes on. The real gateway and billing worker, the billing app's webhook, the
// SDK against a local Stripe.

const WEBHOOK_SECRET = 'whsec_live_purchase_test';
let system: TestSystem;
let stripe: FakeStripe;
let billing: FastifyInstance;

test.before(async () => {
  stripe = await startFakeStripe();
  system = await startSystem({
    env: { STRIPE_SECRET_KEY: 'sk_test_live', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_URL: stripe.url, CREDIT_PACKS: 'medium:2000:220' },
  });
  billing = billingAppOf(system);
  await billing.ready();
});
test.after(async () => {
  await billing?.close();
  await system?.close();
  await stripe?.close();
});

const RATE = '60.0000'; // a credit a second

async function buyAndPay(userId: string): Promise<void> {
  const started = await billing.inject({ method: 'POST', url: '/api/credits/checkout', headers: { authorization: `Bearer ${await system.token(userId)}` }, payload: { packId: 'medium' } });
  assert.is(started.statusCode, 201, started.body);
  const signed = stripe.sign(stripe.completed(started.json().checkout.checkoutSessionId), WEBHOOK_SECRET);
  const paid = await billing.inject({ method: 'POST', url: '/stripe/webhook', headers: { 'content-type': 'application/json', 'stripe-signature': signed.signature }, payload: signed.body });
  assert.is(paid.statusCode, 200, paid.body);
}

const settled = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 15_000, `settlement of ${sessionId}`);

test('a session about to run out of credits goes on when its user buys credits', async () => {
  const userId = await createUser(system, '2.0000');
  const { cloneId } = await createClone(system, RATE);
  const client = await system.connect(userId);
  const started = await request(client, 'session:start', { cloneId, type: 'chat' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await buyAndPay(userId);
  await new Promise((resolve) => setTimeout(resolve, 2000)); // past where the first 2 credits ran out
  const during = await request(client, 'session:get', { sessionId: started.session.id });
  assert.ok(during.ok && during.session.status === 'active', `still active: ${JSON.stringify(during)}`);
  assert.ok((await request(client, 'session:end', { sessionId: started.session.id })).ok);
  const row = await settled(started.session.id);
  assert.is(row.end_reason, 'user');
  assert.ok(parseMoney(row.total_cost) > parseMoney('2.0000'), `charged ${row.total_cost}: past the 2 credits it started with`);
  const user = await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(user.credits_remaining, formatMoney(parseMoney('222.0000') - parseMoney(row.total_cost)));
  assert.is(await ledgerCreditsOf(system.database.db, userId), user.credits_remaining);
  client.disconnect();
});

test('a purchase racing the exhaustion instant: either the session goes on or it ended at that instant, and every credit is accounted for', async () => {
  const outcomes: string[] = [];
  for (const offsetMs of [350, 450, 500, 550, 650]) {
    const userId = await createUser(system, '0.5000'); // runs out 500 ms in
    const { cloneId } = await createClone(system, RATE);
    const client = await system.connect(userId);
    const started = await request(client, 'session:start', { cloneId, type: 'chat' });
    if (!started.ok) throw new Error(JSON.stringify(started));
    await new Promise((resolve) => setTimeout(resolve, offsetMs));
    await buyAndPay(userId);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const got = await request(client, 'session:get', { sessionId: started.session.id });
    if (!got.ok) throw new Error(JSON.stringify(got));
    if (got.session.status !== 'ended') assert.ok((await request(client, 'session:end', { sessionId: started.session.id })).ok);
    const row = await settled(started.session.id);
    outcomes.push(`${offsetMs} ms: ${row.end_reason} ${row.total_cost}`);
    if (row.end_reason === 'credits_exhausted') {
      // ended at the exact instant its first credits ran out: not a unit more, not a unit less
      assert.is(row.total_cost, '0.5000');
    } else {
      assert.is(row.end_reason, 'user');
      assert.is(row.total_cost, formatMoney(timeCost(parseMoney(RATE), Number(row.active_ms))));
    }
    const user = await system.database.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
    assert.is(user.credits_remaining, formatMoney(parseMoney('220.5000') - parseMoney(row.total_cost)), outcomes.at(-1));
    assert.is(await ledgerCreditsOf(system.database.db, userId), user.credits_remaining);
    client.disconnect();
  }
  // the purchase well before the instant always wins; well after it, the session had already ended
  assert.match(outcomes[0]!, /user/);
  assert.match(outcomes.at(-1)!, /credits_exhausted/);
});

test('a subscriber\'s tier discounts the clone\'s rate, frozen into the session when it starts', async () => {
  const { cloneId } = await createClone(system, RATE);
  const rates: Record<string, string> = {};
  for (const tier of ['free', 'pro', 'enterprise'] as const) {
    const userId = await createUser(system, '100.0000');
    await system.database.db.updateTable('user_profiles').set({ subscription_tier: tier }).where('id', '=', userId).execute();
    const client = await system.connect(userId);
    const started = await request(client, 'session:start', { cloneId, type: 'chat' });
    if (!started.ok) throw new Error(JSON.stringify(started));
    rates[tier] = started.session.ratePerMinute;
    // the tier changes mid-session: the session keeps its rate
    await system.database.db.updateTable('user_profiles').set({ subscription_tier: 'free' }).where('id', '=', userId).execute();
    assert.ok((await request(client, 'session:end', { sessionId: started.session.id })).ok);
    const row = await settled(started.session.id);
    assert.is(row.rate_per_minute, rates[tier]);
    assert.is(row.total_cost, formatMoney(timeCost(parseMoney(rates[tier]), Number(row.active_ms))));
    client.disconnect();
  }
  // the default plans: pro 10 % off, enterprise 20 % off
  assert.equal(rates, { free: '60.0000', pro: '54.0000', enterprise: '48.0000' });
});

test.run();
