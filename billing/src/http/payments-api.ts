/**
 * Credits for money, through Stripe:
 * - `GET /api/credits/packs` — what is on sale (anyone);
 * - `POST /api/credits/checkout` — a signed-in user starts buying a pack: 201 with the Checkout Session's URL (200 for
 *   a retry with the same `idempotencyKey`);
 * - `POST /api/subscriptions/checkout` — a signed-in user subscribes to a paid tier: 201 with the Checkout Session's URL
 *   (Stripe's idempotency key per request: a retry with the same key answers the same session);
 * - `POST /stripe/webhook` — Stripe's events, verified with the SDK over the raw body (unsigned, another secret, a
 *   stale timestamp or an altered body: 400, nothing changes), applied once (stripe-events.ts); an event that comes
 *   before the one it follows is answered 503, which Stripe delivers again later.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type Stripe from 'stripe';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { PaidTier, SubscriptionPlan } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { formatMoney } from '#shared/money/money.ts';
import { startCreditCheckout, startSubscriptionCheckout, type CheckoutSettings } from '#billing/payments/credit-checkout.ts';
import { applyStripeEvent, RetryLaterError } from '#billing/payments/stripe-events.ts';
import { verifiedStripeEvent } from '#billing/payments/stripe-client.ts';
import { bearerToken } from './admin-auth.ts';
import { checkoutBody, parseInput, subscriptionCheckoutBody } from './api-schemas.ts';
import type { ApiLogger } from './ledger-api.ts';

export interface PaymentsApiOptions {
  db: Kysely<Database>;
  verifier: TokenVerifier;
  /** Undefined without STRIPE_SECRET_KEY: checkouts answer `unavailable`. */
  stripe: Stripe | undefined;
  /** STRIPE_WEBHOOK_SECRET; undefined: every webhook is refused. */
  webhookSecret: string | undefined;
  checkout: CheckoutSettings;
  /** The paid tiers (SUBSCRIPTION_PLANS). */
  plans: ReadonlyMap<PaidTier, SubscriptionPlan>;
  logger: ApiLogger;
  /** Told after an event changed a user's credits (the live state takes the new balance at once). */
  onBalanceChanged?: ((userId: string) => Promise<void>) | undefined;
}

/** A webhook body is an event of a few KiB; Stripe's largest stay far below this. */
const WEBHOOK_BODY_LIMIT = 256 * 1024;

export const paymentsApi: FastifyPluginAsync<PaymentsApiOptions> = async (app, options) => {
  const { db, verifier, logger } = options;
  // the signature covers the bytes as sent: this plugin's JSON bodies stay raw (the SDK parses the verified event)
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, done) => done(null, body));

  const signedInUser = async (request: FastifyRequest): Promise<string> => {
    const userId = await verifier.verify(bearerToken(request));
    const user = await db.selectFrom('user_profiles').select('id').where('id', '=', userId).where('deleted_at', 'is', null).executeTakeFirst();
    if (!user) throw new AppError('unauthorized', 'unknown user');
    return userId;
  };

  app.get('/api/credits/packs', async () => ({
    currency: options.checkout.currency,
    packs: [...options.checkout.packs.values()].map((pack) => ({ id: pack.id, priceMinor: pack.priceMinor.toString(), credits: formatMoney(pack.credits) })),
  }));

  app.post('/api/credits/checkout', async (request, reply) => {
    const userId = await signedInUser(request);
    const body = parseInput(checkoutBody, parseJson(request.body), 'body');
    const { created, checkout } = await startCreditCheckout(db, options.stripe, options.checkout, { userId, ...body });
    if (created) logger.info({ userId, purchaseId: checkout.purchaseId, packId: checkout.packId }, 'credit checkout started');
    return reply.code(created ? 201 : 200).send({ checkout });
  });

  app.post('/api/subscriptions/checkout', async (request, reply) => {
    const userId = await signedInUser(request);
    const body = parseInput(subscriptionCheckoutBody, parseJson(request.body), 'body');
    const checkout = await startSubscriptionCheckout(options.stripe, options.checkout, options.plans, { userId, ...body });
    logger.info({ userId, tier: body.tier, checkoutSessionId: checkout.checkoutSessionId }, 'subscription checkout started');
    return reply.code(201).send({ checkout });
  });

  app.post('/stripe/webhook', async (request, reply) => {
    if (!options.stripe || !options.webhookSecret) throw new AppError('unavailable', 'Stripe webhooks are not configured (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)');
    const signature = request.headers['stripe-signature'];
    if (typeof signature !== 'string' || !Buffer.isBuffer(request.body)) throw new AppError('invalid_payload', 'a signed Stripe event is expected');
    let event: Stripe.Event;
    try {
      event = verifiedStripeEvent(options.stripe, request.body, signature, options.webhookSecret);
    } catch (error) {
      throw new AppError('invalid_payload', `the Stripe signature does not verify: ${(error as Error).message}`);
    }
    let outcome;
    try {
      outcome = await applyStripeEvent(db, event, options.plans);
    } catch (error) {
      if (error instanceof RetryLaterError) {
        logger.warn({ eventId: event.id, type: event.type, why: error.message }, 'stripe event comes before the one it follows: Stripe will deliver it again');
        throw new AppError('unavailable', error.message);
      }
      throw error;
    }
    const context = { eventId: event.id, type: event.type, effect: outcome.effect, redelivered: !outcome.recorded };
    if (outcome.needsAttention) logger.error(context, 'stripe event needs a person');
    else logger.info(context, 'stripe event');
    if (outcome.balanceChangedFor) {
      await options.onBalanceChanged?.(outcome.balanceChangedFor).catch((error: unknown) =>
        logger.warn({ err: error, userId: outcome.balanceChangedFor }, 'live balance refresh after a payment failed'),
      );
    }
    return reply.code(200).send({ received: true });
  });
};

/** This plugin keeps JSON bodies raw (the webhook's signature): the checkout's body is parsed here. */
function parseJson(body: unknown): unknown {
  if (!Buffer.isBuffer(body)) return body;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new AppError('invalid_payload', 'body: not JSON');
  }
}
