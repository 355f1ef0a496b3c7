/**
 * A signed-in user buys a credit pack: a Stripe Checkout Session for the pack's price, its metadata naming the user,
 * the pack and our purchase, and a `credit_purchases` row (pending) that the webhook later marks paid. Idempotent per
 * request: the buyer's key (or one made for the request) is the Stripe idempotency key and `request_key`, so a retried
 * request answers the same Checkout Session and Stripe makes no second one.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type Stripe from 'stripe';
import type { CreditPack, PaidTier, SubscriptionPlan } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { formatMoney } from '#shared/money/money.ts';

export interface CheckoutSettings {
  packs: ReadonlyMap<string, CreditPack>;
  currency: string;
  successUrl: string;
  cancelUrl: string;
}

export interface CheckoutRequest {
  userId: string;
  packId: string;
  /** The buyer's key for this purchase (a retry sends the same); absent: this request is its own purchase. */
  idempotencyKey?: string | undefined;
}

export interface CheckoutView {
  purchaseId: string;
  checkoutSessionId: string;
  url: string | null;
  packId: string;
  credits: string;
  amountMinor: string;
  currency: string;
  status: string;
}

export async function startCreditCheckout(
  db: Kysely<Database>,
  stripe: Stripe | undefined,
  settings: CheckoutSettings,
  request: CheckoutRequest,
): Promise<{ created: boolean; checkout: CheckoutView }> {
  const pack = settings.packs.get(request.packId);
  if (!pack) throw new AppError('invalid_payload', `packId: no pack ${request.packId}`, { packs: [...settings.packs.keys()] });
  if (!stripe) throw new AppError('unavailable', 'credit purchases are not configured (STRIPE_SECRET_KEY)');
  const requestKey = `checkout:${request.userId}:${request.idempotencyKey ?? randomUUID()}`;
  const previous = await db.selectFrom('credit_purchases').selectAll().where('request_key', '=', requestKey).executeTakeFirst();
  if (previous) {
    if (previous.pack_id !== pack.id) throw new AppError('invalid_payload', 'idempotencyKey: already used for another pack');
    return { created: false, checkout: toView(previous) };
  }
  const purchaseId = randomUUID();
  const metadata = { tollgate_purchase_id: purchaseId, user_id: request.userId, pack_id: pack.id };
  let session: Stripe.Checkout.Session;
  try {
    session = await stripe.checkout.sessions.create(
      {
        mode: 'payment',
        client_reference_id: request.userId,
        line_items: [
          {
            quantity: 1,
            price_data: {
              currency: settings.currency,
              unit_amount: Number(pack.priceMinor),
              product_data: { name: `${formatMoney(pack.credits)} credits (${pack.id})` },
            },
          },
        ],
        metadata,
        // the charge's refunds and disputes name the purchase too
        payment_intent_data: { metadata },
        success_url: settings.successUrl,
        cancel_url: settings.cancelUrl,
      },
      { idempotencyKey: requestKey },
    );
  } catch (error) {
    throw stripeFailure(error);
  }
  const row = await db
    .insertInto('credit_purchases')
    .values({
      id: purchaseId,
      user_id: request.userId,
      pack_id: pack.id,
      request_key: requestKey,
      checkout_session_id: session.id,
      checkout_url: session.url ?? null,
      amount_minor: pack.priceMinor.toString(),
      currency: settings.currency,
      credits: formatMoney(pack.credits),
    })
    // the same key raced here: Stripe answered both with one session; the first row stands
    .onConflict((oc) => oc.column('request_key').doNothing())
    .returningAll()
    .executeTakeFirst();
  const stored = row ?? (await db.selectFrom('credit_purchases').selectAll().where('request_key', '=', requestKey).executeTakeFirstOrThrow());
  return { created: row !== undefined, checkout: toView(stored) };
}

/**
 * A signed-in user subscribes to a paid tier: a Checkout Session in subscription mode for the tier's Stripe price.
 * The subscription carries the user in its metadata; the webhooks that follow make the user that tier and grant its
 * credits (stripe-events.ts). Nothing is stored until then.
 */
export async function startSubscriptionCheckout(
  stripe: Stripe | undefined,
  settings: Pick<CheckoutSettings, 'successUrl' | 'cancelUrl'>,
  plans: ReadonlyMap<PaidTier, SubscriptionPlan>,
  request: { userId: string; tier: PaidTier; idempotencyKey?: string | undefined },
): Promise<{ checkoutSessionId: string; url: string | null; tier: PaidTier }> {
  const plan = plans.get(request.tier);
  if (!plan) throw new AppError('invalid_payload', `tier: ${request.tier} is not on sale`);
  if (!stripe) throw new AppError('unavailable', 'subscriptions are not configured (STRIPE_SECRET_KEY)');
  try {
    const session = await stripe.checkout.sessions.create(
      {
        mode: 'subscription',
        client_reference_id: request.userId,
        line_items: [{ price: plan.priceId, quantity: 1 }],
        metadata: { user_id: request.userId, tier: plan.tier },
        subscription_data: { metadata: { user_id: request.userId } },
        success_url: settings.successUrl,
        cancel_url: settings.cancelUrl,
      },
      { idempotencyKey: `subscribe:${request.userId}:${request.idempotencyKey ?? randomUUID()}` },
    );
    return { checkoutSessionId: session.id, url: session.url ?? null, tier: plan.tier };
  } catch (error) {
    throw stripeFailure(error);
  }
}

/** Stripe refused or did not answer: the buyer may try again (nothing was bought). */
function stripeFailure(error: unknown): AppError {
  const message = error instanceof Error ? error.message : String(error);
  return new AppError('unavailable', `Stripe did not create the checkout: ${message}`);
}

function toView(row: {
  id: string;
  checkout_session_id: string;
  checkout_url: string | null;
  pack_id: string;
  credits: string;
  amount_minor: string;
  currency: string;
  status: string;
}): CheckoutView {
  return {
    purchaseId: row.id,
    checkoutSessionId: row.checkout_session_id,
    url: row.checkout_url,
    packId: row.pack_id,
    credits: row.credits,
    amountMinor: String(row.amount_minor),
    currency: row.currency,
    status: row.status,
  };
}
