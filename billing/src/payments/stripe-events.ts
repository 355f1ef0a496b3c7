/**
 * Applies a verified Stripe webhook event to the ledger, exactly once: in one transaction the event's id is recorded
 * (a redelivery finds it and changes nothing) and its effect written, each effect also unique by what happened in
 * the world — a purchase is paid once however many events say so (`purchase:<purchase>`), a refund once per
 * cumulative refunded amount of its charge, a dispute once. Locks: the purchase, then the user (as settlements take
 * the session, then the user).
 *
 * - `checkout.session.completed` / `checkout.session.async_payment_succeeded`, paid: the purchase's credits are the
 *   user's — a `purchase` movement (user +credits, cash −credits) and the balance raised;
 * - `charge.refunded`: the newly refunded cash takes back the credits it bought: what the user has not spent leaves
 *   their balance (never below zero), the rest is the platform's loss (purchase-reversal.ts); likewise
 *   `charge.dispute.created` for the disputed amount;
 * - a refund or dispute of a purchase whose payment has not been applied yet is answered "later" (RetryLaterError:
 *   nothing recorded, Stripe delivers it again), so the order of delivery does not matter;
 * - `customer.subscription.*`: the subscription as its newest event says (an older event delivered late changes
 *   nothing); the user's tier is the best of their live subscriptions';
 * - `invoice.paid` of a subscription: its tier's monthly credits, once per invoice (a `grant` movement); an invoice of
 *   a subscription not known here yet is answered "later";
 * - `transfer.reversed` of a creator payout: the payout is reversed and what it paid is owed again (once);
 * - anything else, or a payment that is not one of our purchases, is recorded and left alone.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type Stripe from 'stripe';
import type { PaidTier, SubscriptionPlan } from '#shared/config/config.ts';
import type { Database, MoneyMovementKind, MovementAccountKind, MovementEntryKind } from '#shared/db/schema.ts';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { failPayout } from './creator-payouts.ts';
import { reversalSplit } from './purchase-reversal.ts';

export interface StripeEventOutcome {
  /** false: the event was seen before (a redelivery). */
  recorded: boolean;
  /** What it did, for the log. */
  effect: string;
  /** Whose balance changed (the live state must take it). */
  balanceChangedFor?: string;
  /** Something a person must look at (logged as an error): e.g. a checkout charged another amount than its pack. */
  needsAttention?: boolean;
}

/** The event cannot be applied yet (it came before the one it follows): answer so that Stripe delivers it again. */
export class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
}

type PurchaseRow = { id: string; user_id: string; status: string; credits: string; amount_minor: string; reversed_minor: string; currency: string };

export async function applyStripeEvent(
  db: Kysely<Database>,
  event: Stripe.Event,
  plans: ReadonlyMap<PaidTier, SubscriptionPlan> = new Map(),
): Promise<StripeEventOutcome> {
  return db.transaction().execute(async (trx) => {
    const fresh = await trx
      .insertInto('stripe_events')
      .values({ id: event.id, type: event.type })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!fresh) return { recorded: false, effect: 'already applied' };
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
        return applyPayment(trx, event.data.object);
      case 'charge.refunded':
        return applyRefund(trx, event.data.object);
      case 'charge.dispute.created':
        return applyDispute(trx, event.data.object);
      case 'customer.subscription.created':
      case 'customer.subscription.updated':
      case 'customer.subscription.deleted':
        return applySubscription(trx, event.type, event.created, event.data.object, plans);
      case 'invoice.paid':
        return applyInvoicePaid(trx, event.data.object, plans);
      case 'transfer.reversed':
        return applyTransferReversed(trx, event.data.object);
      default:
        return { recorded: true, effect: `ignored ${event.type}` };
    }
  });
}

async function lockPurchase(trx: Transaction<Database>, by: { id?: string | undefined; checkoutSessionId?: string; paymentIntentId?: string | undefined }): Promise<PurchaseRow | undefined> {
  let query = trx.selectFrom('credit_purchases').select(['id', 'user_id', 'status', 'credits', 'amount_minor', 'reversed_minor', 'currency']);
  if (by.paymentIntentId) query = query.where('payment_intent_id', '=', by.paymentIntentId);
  else if (by.id && isUuid(by.id)) query = query.where('id', '=', by.id);
  else if (by.checkoutSessionId) query = query.where('checkout_session_id', '=', by.checkoutSessionId);
  else return undefined;
  return query.forUpdate().executeTakeFirst();
}

async function applyPayment(trx: Transaction<Database>, session: Stripe.Checkout.Session): Promise<StripeEventOutcome> {
  if (session.payment_status !== 'paid') return { recorded: true, effect: `checkout ${session.id} not paid yet (${session.payment_status})` };
  const purchase = await lockPurchase(trx, { checkoutSessionId: session.id });
  if (!purchase) return { recorded: true, effect: `checkout ${session.id} is not one of our purchases` };
  if (purchase.status !== 'pending') return { recorded: true, effect: `purchase ${purchase.id} already paid` };
  if (session.amount_total !== null && BigInt(session.amount_total) !== BigInt(purchase.amount_minor)) {
    // not what we asked Stripe to charge: nothing is granted; a person looks (the log is an error)
    return { recorded: true, effect: `checkout ${session.id} charged ${session.amount_total}, not the pack's ${purchase.amount_minor}: nothing granted`, needsAttention: true };
  }
  const paymentIntent = typeof session.payment_intent === 'string' ? session.payment_intent : (session.payment_intent?.id ?? null);
  await trx
    .updateTable('credit_purchases')
    .set({ status: 'paid', paid_at: sql`now()`, payment_intent_id: paymentIntent })
    .where('id', '=', purchase.id)
    .execute();
  const credits = parseMoney(purchase.credits);
  await recordMovement(trx, {
    kind: 'purchase',
    userId: purchase.user_id,
    reference: `purchase:${purchase.id}`,
    credits,
    amountMinor: BigInt(purchase.amount_minor),
    currency: purchase.currency,
    entries: [
      { account: 'user', amount: credits, kind: 'purchase' },
      { account: 'cash', amount: -credits, kind: 'purchase' },
    ],
  });
  return { recorded: true, effect: `purchase ${purchase.id} paid: ${purchase.credits} credits`, balanceChangedFor: purchase.user_id };
}

async function applyRefund(trx: Transaction<Database>, charge: Stripe.Charge): Promise<StripeEventOutcome> {
  const purchase = await purchaseOfPayment(trx, idOf(charge.payment_intent), charge.metadata?.['tollgate_purchase_id']);
  if (!purchase) return { recorded: true, effect: `charge ${charge.id} is not one of our purchases` };
  // refunds are cumulative on the charge: what our refund movements have not taken yet is new
  const { refunded } = await trx
    .selectFrom('money_movements')
    .select(sql<string>`coalesce(sum(amount_minor), 0)::text`.as('refunded'))
    .where('kind', '=', 'card_refund')
    .where('reference', 'like', `refund:${purchase.id}:%`)
    .executeTakeFirstOrThrow();
  const newly = BigInt(charge.amount_refunded) - BigInt(refunded);
  return reverse(trx, purchase, 'card_refund', `refund:${purchase.id}:${charge.amount_refunded}`, newly, 'refunded');
}

async function applyDispute(trx: Transaction<Database>, dispute: Stripe.Dispute): Promise<StripeEventOutcome> {
  const purchase = await purchaseOfPayment(trx, idOf(dispute.payment_intent), dispute.metadata?.['tollgate_purchase_id']);
  if (!purchase) return { recorded: true, effect: `dispute ${dispute.id} is not of one of our purchases` };
  const seen = await trx.selectFrom('money_movements').select('id').where('reference', '=', `dispute:${dispute.id}`).executeTakeFirst();
  if (seen) return { recorded: true, effect: `dispute ${dispute.id} already applied` };
  return reverse(trx, purchase, 'dispute', `dispute:${dispute.id}`, BigInt(dispute.amount), 'disputed');
}

/** The purchase a charge or dispute is of; RetryLaterError while its payment is not applied yet. */
async function purchaseOfPayment(trx: Transaction<Database>, paymentIntentId: string | undefined, purchaseId: string | undefined): Promise<PurchaseRow | undefined> {
  const purchase = (await lockPurchase(trx, { paymentIntentId })) ?? (await lockPurchase(trx, { id: purchaseId }));
  if (purchase?.status === 'pending') throw new RetryLaterError(`purchase ${purchase.id} is not paid here yet`);
  if (!purchase && purchaseId && isUuid(purchaseId)) throw new RetryLaterError(`purchase ${purchaseId} is not known here yet`);
  return purchase;
}

async function reverse(
  trx: Transaction<Database>,
  purchase: PurchaseRow,
  kind: 'card_refund' | 'dispute',
  reference: string,
  newlyReversedMinor: bigint,
  status: 'refunded' | 'disputed',
): Promise<StripeEventOutcome> {
  const before = BigInt(purchase.reversed_minor);
  const user = await trx.selectFrom('user_profiles').select('credits_remaining').where('id', '=', purchase.user_id).forNoKeyUpdate().executeTakeFirstOrThrow();
  const split = reversalSplit(
    { credits: parseMoney(purchase.credits), amountMinor: BigInt(purchase.amount_minor) },
    before,
    before + newlyReversedMinor,
    parseMoney(user.credits_remaining),
  );
  if (split.reversedMinor === 0n) return { recorded: true, effect: `${reference}: nothing left to reverse` };
  await recordMovement(trx, {
    kind,
    userId: purchase.user_id,
    reference,
    credits: -split.takenBack,
    amountMinor: split.reversedMinor,
    currency: purchase.currency,
    entries: [
      { account: 'user', amount: -split.takenBack, kind },
      { account: 'cash', amount: split.credits, kind },
      { account: 'platform', amount: -split.loss, kind: 'platform_loss' },
    ],
  });
  await trx
    .updateTable('credit_purchases')
    .set({ reversed_minor: (before + split.reversedMinor).toString(), status })
    .where('id', '=', purchase.id)
    .execute();
  return {
    recorded: true,
    effect: `${reference}: ${split.reversedMinor} reversed, ${formatMoney(split.takenBack)} credits taken back, ${formatMoney(split.loss)} already spent (platform loss)`,
    balanceChangedFor: split.takenBack > 0n ? purchase.user_id : undefined,
  };
}

/** Stripe statuses in which a subscription gives its tier (past_due: Stripe is still retrying the payment). */
const LIVE_STATUSES = ['active', 'trialing', 'past_due'];
const TIER_RANK: Record<string, number> = { free: 0, pro: 1, enterprise: 2 };

async function applySubscription(
  trx: Transaction<Database>,
  type: string,
  created: number,
  subscription: Stripe.Subscription,
  plans: ReadonlyMap<PaidTier, SubscriptionPlan>,
): Promise<StripeEventOutcome> {
  const userId = subscription.metadata?.['user_id'];
  if (!userId || !isUuid(userId)) return { recorded: true, effect: `subscription ${subscription.id} names no user of ours` };
  const user = await trx.selectFrom('user_profiles').select('id').where('id', '=', userId).forNoKeyUpdate().executeTakeFirst();
  if (!user) return { recorded: true, effect: `subscription ${subscription.id}: no user ${userId}` };
  const item = subscription.items?.data?.[0] as (Stripe.SubscriptionItem & { current_period_end?: number }) | undefined;
  const plan = [...plans.values()].find((p) => p.priceId === item?.price?.id);
  if (!plan) return { recorded: true, effect: `subscription ${subscription.id}: price ${item?.price?.id} is no plan here` };
  const known = await trx
    .selectFrom('subscriptions')
    .select('event_created')
    .where('stripe_subscription_id', '=', subscription.id)
    .forUpdate()
    .executeTakeFirst();
  if (known && BigInt(known.event_created) > BigInt(created)) return { recorded: true, effect: `subscription ${subscription.id}: a newer event was applied` };
  const status = type === 'customer.subscription.deleted' ? 'canceled' : subscription.status;
  const periodEnd = item?.current_period_end ?? (subscription as { current_period_end?: number }).current_period_end;
  const row = {
    user_id: userId,
    tier: plan.tier,
    status,
    current_period_end: periodEnd ? new Date(periodEnd * 1000) : null,
    event_created: created,
    updated_at: new Date(),
  };
  await trx
    .insertInto('subscriptions')
    .values({ stripe_subscription_id: subscription.id, ...row })
    .onConflict((oc) => oc.column('stripe_subscription_id').doUpdateSet(row))
    .execute();
  const live = await trx.selectFrom('subscriptions').select('tier').where('user_id', '=', userId).where('status', 'in', LIVE_STATUSES).execute();
  const tier = live.map((s) => s.tier as string).reduce((best, t) => (TIER_RANK[t]! > TIER_RANK[best]! ? t : best), 'free') as 'free' | PaidTier;
  await trx.updateTable('user_profiles').set({ subscription_tier: tier }).where('id', '=', userId).execute();
  return { recorded: true, effect: `subscription ${subscription.id} ${status}: ${userId} is ${tier}` };
}

async function applyInvoicePaid(trx: Transaction<Database>, invoice: Stripe.Invoice, plans: ReadonlyMap<PaidTier, SubscriptionPlan>): Promise<StripeEventOutcome> {
  // where the invoice names its subscription moved between API versions
  const details = (invoice as { parent?: { subscription_details?: { subscription?: string | { id: string }; metadata?: Record<string, string> } } }).parent?.subscription_details;
  const subscriptionId = idOf((invoice as { subscription?: string | { id: string } | null }).subscription) ?? idOf(details?.subscription);
  if (!subscriptionId) return { recorded: true, effect: `invoice ${invoice.id} is not a subscription's` };
  const subscription = await trx.selectFrom('subscriptions').select(['user_id', 'tier']).where('stripe_subscription_id', '=', subscriptionId).executeTakeFirst();
  if (!subscription) {
    const userId = details?.metadata?.['user_id'];
    if (userId && isUuid(userId)) throw new RetryLaterError(`subscription ${subscriptionId} is not known here yet`);
    return { recorded: true, effect: `invoice ${invoice.id}: subscription ${subscriptionId} is not ours` };
  }
  const reference = `invoice:${invoice.id}`;
  if (await trx.selectFrom('money_movements').select('id').where('reference', '=', reference).executeTakeFirst()) {
    return { recorded: true, effect: `${reference} already granted` };
  }
  const plan = plans.get(subscription.tier);
  if (!plan || plan.monthlyCredits === 0n) return { recorded: true, effect: `${reference}: tier ${subscription.tier} grants nothing` };
  await trx.selectFrom('user_profiles').select('id').where('id', '=', subscription.user_id).forNoKeyUpdate().executeTakeFirstOrThrow();
  await recordMovement(trx, {
    kind: 'grant',
    userId: subscription.user_id,
    reference,
    credits: plan.monthlyCredits,
    amountMinor: BigInt(invoice.amount_paid ?? 0),
    currency: invoice.currency ?? null,
    entries: [
      { account: 'user', amount: plan.monthlyCredits, kind: 'grant' },
      { account: 'platform', amount: -plan.monthlyCredits, kind: 'grant' },
    ],
  });
  return { recorded: true, effect: `${reference}: ${formatMoney(plan.monthlyCredits)} credits granted (${plan.tier})`, balanceChangedFor: subscription.user_id };
}

async function applyTransferReversed(trx: Transaction<Database>, transfer: Stripe.Transfer): Promise<StripeEventOutcome> {
  const payout = await trx.selectFrom('payouts').select(['id', 'creator_id', 'status']).where('transfer_id', '=', transfer.id).executeTakeFirst();
  if (!payout) return { recorded: true, effect: `transfer ${transfer.id} is not one of our payouts` };
  const view = await failPayout(trx, payout.id, 'reversed', `transfer ${transfer.id} reversed`);
  return { recorded: true, effect: `payout ${payout.id} ${view.status}: ${view.credits} credits owed to ${payout.creator_id} again` };
}

interface Movement {
  kind: MoneyMovementKind;
  userId: string;
  reference: string;
  credits: bigint;
  amountMinor: bigint;
  currency: string | null;
  entries: Array<{ account: MovementAccountKind; amount: bigint; kind: MovementEntryKind }>;
}

/** The movement, its non-zero entries (they sum to zero: checked at commit) and the user's balance moved with it. */
async function recordMovement(trx: Transaction<Database>, movement: Movement): Promise<void> {
  const { id } = await trx
    .insertInto('money_movements')
    .values({
      kind: movement.kind,
      user_id: movement.userId,
      reference: movement.reference,
      credits: formatMoney(movement.credits),
      amount_minor: movement.amountMinor.toString(),
      currency: movement.currency,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await trx
    .insertInto('movement_entries')
    .values(
      movement.entries
        .filter((entry) => entry.amount !== 0n)
        .map((entry) => ({
          movement_id: id,
          account_kind: entry.account,
          account_id: entry.account === 'user' ? movement.userId : null,
          amount: formatMoney(entry.amount),
          kind: entry.kind,
        })),
    )
    .execute();
  if (movement.credits !== 0n) {
    await trx
      .updateTable('user_profiles')
      .set({ credits_remaining: sql`credits_remaining + ${formatMoney(movement.credits)}::numeric` })
      .where('id', '=', movement.userId)
      .execute();
  }
}

const idOf = (value: string | { id: string } | null | undefined): string | undefined => (typeof value === 'string' ? value : value?.id);
const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
