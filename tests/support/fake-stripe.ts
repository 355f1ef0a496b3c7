/**
 * A local server that speaks the part of Stripe's API Tollgate calls, in Stripe's wire format, for the real SDK to
 * talk to (STRIPE_API_URL): `POST /v1/checkout/sessions` (form-encoded, as the SDK sends it; `Idempotency-Key`
 * honoured as Stripe does: the same key and parameters answer the first object, other parameters 400
 * `idempotency_error`). It also makes the events Stripe would send about those sessions, signed with Stripe's scheme
 * (the SDK's own test header), for the tests to deliver to the webhook in any order and as often as they like.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

export interface FakeCheckoutSession {
  id: string;
  object: 'checkout.session';
  mode: string;
  status: 'open' | 'complete';
  payment_status: 'unpaid' | 'paid';
  amount_total: number;
  currency: string;
  client_reference_id: string | null;
  metadata: Record<string, string>;
  payment_intent: string | null;
  url: string;
  success_url: string;
  cancel_url: string;
}

export interface FakeStripe {
  url: string;
  /** Every Checkout Session created, by id. */
  sessions: Map<string, FakeCheckoutSession>;
  /** Requests received (method path), for counting. */
  requests: string[];
  /** Every transfer made, by id (`POST /v1/transfers`: to `acct_refused…` Stripe says no; to `acct_flaky…` it errs 500 until `healed`). */
  transfers: Map<string, { id: string; amount: number; currency: string; destination: string; metadata: Record<string, string> }>;
  /** Whether transfers to `acct_flaky…` go through now. */
  healed: boolean;
  /** `transfer.reversed` of a transfer. */
  transferReversed(transferId: string): Stripe.Event;
  /** The `checkout.session.completed` event of a paid session (its payment intent made up once). */
  completed(sessionId: string): Stripe.Event;
  /** `charge.refunded` with `amountRefunded` refunded so far on the session's charge. */
  refunded(sessionId: string, amountRefunded: number): Stripe.Event;
  /** `charge.dispute.created` for `amount` of the session's charge. */
  disputed(sessionId: string, amount: number): Stripe.Event;
  /** A `customer.subscription.*` event about a subscription of `userId` to `priceId` (created: Unix seconds). */
  subscription(
    type: 'customer.subscription.created' | 'customer.subscription.updated' | 'customer.subscription.deleted',
    fields: { id: string; userId: string; priceId: string; status: string; created?: number },
  ): Stripe.Event;
  /** `invoice.paid` of a subscription (the subscription named where the current API version names it). */
  invoicePaid(fields: { subscriptionId: string; userId: string; amountPaid: number; id?: string }): Stripe.Event;
  /** The body and `Stripe-Signature` header of an event, signed with `secret` at `timestamp` (seconds; default now). */
  sign(event: Stripe.Event | string, secret: string, timestamp?: number): { body: string; signature: string };
  close(): Promise<void>;
}

const id = (prefix: string) => `${prefix}_test_${randomBytes(12).toString('hex')}`;

/** `a[b][0][c]=v` form fields → a nested object (arrays as objects keyed by index: enough to read them back). */
function parseForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const path = key.split(/\[|\]\[|\]/).filter(Boolean);
    let node = root;
    for (const [i, part] of path.entries()) {
      if (i === path.length - 1) node[part] = value;
      else node = (node[part] ??= {}) as Record<string, unknown>;
    }
  }
  return root;
}

function stripeError(status: number, type: string, message: string) {
  return { status, body: { error: { type, message } } };
}

export async function startFakeStripe(): Promise<FakeStripe> {
  const sessions = new Map<string, FakeCheckoutSession>();
  const byKey = new Map<string, { params: string; response: unknown }>();
  const paymentIntents = new Map<string, string>();
  const requests: string[] = [];
  const transfers: FakeStripe['transfers'] = new Map();
  const state = { healed: false };
  const signer = new Stripe('sk_test_signer');

  const server: Server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    request.on('end', () => {
      requests.push(`${request.method} ${request.url}`);
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json', 'request-id': id('req') });
        response.end(JSON.stringify(body));
      };
      if (!/^Bearer sk_/.test(request.headers.authorization ?? '')) {
        const e = stripeError(401, 'invalid_request_error', 'Invalid API Key provided');
        return answer(e.status, e.body);
      }
      if (request.method === 'POST' && request.url === '/v1/checkout/sessions') {
        const key = request.headers['idempotency-key'];
        if (typeof key === 'string') {
          const seen = byKey.get(key);
          if (seen && seen.params !== raw) {
            const e = stripeError(400, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.');
            return answer(e.status, e.body);
          }
          if (seen) return answer(200, seen.response);
        }
        const params = parseForm(raw) as {
          mode?: string;
          client_reference_id?: string;
          metadata?: Record<string, string>;
          success_url?: string;
          cancel_url?: string;
          line_items?: Record<string, { quantity?: string; price?: string; price_data?: { currency?: string; unit_amount?: string } }>;
        };
        const item = params.line_items?.['0'];
        const session: FakeCheckoutSession = {
          id: id('cs'),
          object: 'checkout.session',
          mode: params.mode ?? 'payment',
          status: 'open',
          payment_status: 'unpaid',
          amount_total: Number(item?.price_data?.unit_amount ?? 0) * Number(item?.quantity ?? 1),
          currency: item?.price_data?.currency ?? 'usd',
          client_reference_id: params.client_reference_id ?? null,
          metadata: params.metadata ?? {},
          payment_intent: null,
          url: `https://checkout.stripe.test/c/pay/${randomBytes(8).toString('hex')}`,
          success_url: params.success_url ?? '',
          cancel_url: params.cancel_url ?? '',
        };
        sessions.set(session.id, session);
        if (typeof key === 'string') byKey.set(key, { params: raw, response: session });
        return answer(200, session);
      }
      if (request.method === 'POST' && request.url === '/v1/transfers') {
        const key = request.headers['idempotency-key'];
        const seen = typeof key === 'string' ? byKey.get(key) : undefined;
        if (seen && seen.params !== raw) {
          const e = stripeError(400, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.');
          return answer(e.status, e.body);
        }
        if (seen) return answer(200, seen.response);
        const params = parseForm(raw) as { amount?: string; currency?: string; destination?: string; metadata?: Record<string, string> };
        const destination = params.destination ?? '';
        if (destination.startsWith('acct_refused')) {
          const e = stripeError(400, 'invalid_request_error', `No such destination: '${destination}'`);
          return answer(e.status, e.body);
        }
        if (destination.startsWith('acct_flaky') && !state.healed) {
          const e = stripeError(500, 'api_error', 'An unknown error occurred');
          return answer(e.status, e.body);
        }
        const made = { id: id('tr'), object: 'transfer', amount: Number(params.amount), currency: params.currency ?? 'usd', destination, metadata: params.metadata ?? {}, reversed: false };
        transfers.set(made.id, made);
        if (typeof key === 'string') byKey.set(key, { params: raw, response: made });
        return answer(200, made);
      }
      const e = stripeError(404, 'invalid_request_error', `Unrecognized request URL (${request.method}: ${request.url})`);
      answer(e.status, e.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const sessionOf = (sessionId: string) => {
    const session = sessions.get(sessionId);
    if (!session) throw new Error(`no checkout session ${sessionId}`);
    return session;
  };
  const paymentIntentOf = (sessionId: string) => {
    let pi = paymentIntents.get(sessionId);
    if (!pi) paymentIntents.set(sessionId, (pi = id('pi')));
    return pi;
  };
  const event = (type: string, object: unknown, created = Math.floor(Date.now() / 1000)): Stripe.Event =>
    ({ id: id('evt'), object: 'event', api_version: '2025-01-01', created, livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type, data: { object } }) as unknown as Stripe.Event;
  const chargeId = (sessionId: string) => `ch_${paymentIntentOf(sessionId).slice(3)}`;

  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    requests,
    transfers,
    get healed() {
      return state.healed;
    },
    set healed(value: boolean) {
      state.healed = value;
    },
    transferReversed(transferId) {
      const made = transfers.get(transferId);
      if (!made) throw new Error(`no transfer ${transferId}`);
      return event('transfer.reversed', { ...made, object: 'transfer', reversed: true, amount_reversed: made.amount });
    },
    completed(sessionId) {
      const session = sessionOf(sessionId);
      return event('checkout.session.completed', { ...session, status: 'complete', payment_status: 'paid', payment_intent: paymentIntentOf(sessionId) });
    },
    refunded(sessionId, amountRefunded) {
      const session = sessionOf(sessionId);
      return event('charge.refunded', {
        id: chargeId(sessionId),
        object: 'charge',
        amount: session.amount_total,
        amount_refunded: amountRefunded,
        refunded: amountRefunded >= session.amount_total,
        currency: session.currency,
        payment_intent: paymentIntentOf(sessionId),
        metadata: session.metadata,
      });
    },
    disputed(sessionId, amount) {
      const session = sessionOf(sessionId);
      return event('charge.dispute.created', {
        id: id('dp'),
        object: 'dispute',
        amount,
        currency: session.currency,
        charge: chargeId(sessionId),
        payment_intent: paymentIntentOf(sessionId),
        metadata: {},
        status: 'needs_response',
      });
    },
    subscription(type, fields) {
      const periodEnd = Math.floor(Date.now() / 1000) + 30 * 86_400;
      return event(
        type,
        {
          id: fields.id,
          object: 'subscription',
          status: fields.status,
          metadata: { user_id: fields.userId },
          items: { object: 'list', data: [{ id: id('si'), object: 'subscription_item', price: { id: fields.priceId, object: 'price' }, current_period_end: periodEnd }] },
        },
        fields.created,
      );
    },
    invoicePaid(fields) {
      return event('invoice.paid', {
        id: fields.id ?? id('in'),
        object: 'invoice',
        status: 'paid',
        amount_paid: fields.amountPaid,
        currency: 'usd',
        parent: { type: 'subscription_details', subscription_details: { subscription: fields.subscriptionId, metadata: { user_id: fields.userId } } },
      });
    },
    sign(eventOrBody, secret, timestamp) {
      const body = typeof eventOrBody === 'string' ? eventOrBody : JSON.stringify(eventOrBody);
      return { body, signature: signer.webhooks.generateTestHeaderString({ payload: body, secret, ...(timestamp === undefined ? {} : { timestamp }) }) };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
