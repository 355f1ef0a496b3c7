/**
 * The one Stripe client of the billing process, through the official SDK: STRIPE_SECRET_KEY, and STRIPE_API_URL split
 * into the SDK's host, port and protocol (tests point it at a local server that speaks Stripe's wire format). The
 * SDK retries network failures itself with the request's idempotency key, so a retry never makes a second object.
 * Undefined without a key: purchases then answer `unavailable`.
 */
import Stripe from 'stripe';
import type { Config } from '#shared/config/config.ts';

export function stripeFromConfig(config: Pick<Config, 'STRIPE_SECRET_KEY' | 'STRIPE_API_URL'>): Stripe | undefined {
  if (!config.STRIPE_SECRET_KEY) return undefined;
  const api = new URL(config.STRIPE_API_URL);
  const protocol = api.protocol === 'http:' ? 'http' : 'https';
  return new Stripe(config.STRIPE_SECRET_KEY, {
    host: api.hostname,
    port: api.port || (protocol === 'http' ? 80 : 443),
    protocol,
    maxNetworkRetries: 2,
    timeout: 10_000,
    telemetry: false,
  });
}

/** Verifies a webhook's signature over its raw body (Stripe's scheme, 5 minutes' tolerance) and parses the event. */
export function verifiedStripeEvent(stripe: Stripe, rawBody: Buffer, signature: string, secret: string): Stripe.Event {
  return stripe.webhooks.constructEvent(rawBody, signature, secret, 300);
}
