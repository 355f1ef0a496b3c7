/**
 * Paying creators what they earned, through Stripe Connect transfers. Per creator, from the ledger: earned (their
 * creator-account entries in `ledger_entries`: earnings and adjustments), paid and pending (their payouts), and
 * owed = earned − paid − pending, which is also the sum of their creator-account entries in both ledger tables (a
 * payout's movement takes its amount off; a failed or reversed transfer's gives it back).
 *
 * A run for a period (admin, idempotent per creator and period): each creator with a payout account and at least the
 * minimum owed gets one payout of everything owed (in whole minor units of the currency; the remainder stays owed).
 * The payout and its movement are written first, in one transaction under the creator's row lock, then the transfer
 * is made with an idempotency key per creator and period: a run retried after a crash or an unknown outcome makes the
 * same transfer, never a second. A transfer Stripe refuses fails the payout and restores what is owed.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import Stripe from 'stripe';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { formatMoney, parseMoney, type Units } from '#shared/money/money.ts';

export interface PayoutSettings {
  /** The least paid in one payout (units). */
  minimum: Units;
  /** Minor units of the currency per credit (a divisor of 10,000). */
  minorPerCredit: number;
  currency: string;
}

export interface CreatorBalance {
  creatorId: string;
  earned: string;
  paid: string;
  pending: string;
  owed: string;
}

export interface PayoutView {
  id: string;
  creatorId: string;
  period: string;
  credits: string;
  amountMinor: string;
  currency: string;
  status: string;
  transferId: string | null;
  failure: string | null;
}

const UNITS_PER_CREDIT = 10_000n;

/** What can be paid of `owed` in whole minor units, and those minor units. */
export function payable(owed: Units, minorPerCredit: number): { credits: Units; minor: bigint } {
  const unitsPerMinor = UNITS_PER_CREDIT / BigInt(minorPerCredit);
  const minor = owed > 0n ? owed / unitsPerMinor : 0n;
  return { credits: minor * unitsPerMinor, minor };
}

/** Every creator's (or one's) earned, paid, pending and owed, from the ledger. */
export async function creatorBalances(db: Kysely<Database> | Transaction<Database>, creatorId?: string): Promise<CreatorBalance[]> {
  const { rows } = await sql<{ creator_id: string; earned: string; paid: string; pending: string; owed: string }>`
    WITH earned AS (
      SELECT account_id AS creator_id, sum(amount) AS amount FROM ledger_entries WHERE account_kind = 'creator'
      ${creatorId ? sql`AND account_id = ${creatorId}` : sql``} GROUP BY account_id
    ), moved AS (
      SELECT account_id AS creator_id, sum(amount) AS amount FROM movement_entries WHERE account_kind = 'creator'
      ${creatorId ? sql`AND account_id = ${creatorId}` : sql``} GROUP BY account_id
    ), paid AS (
      SELECT creator_id, coalesce(sum(credits) FILTER (WHERE status = 'paid'), 0) AS paid,
             coalesce(sum(credits) FILTER (WHERE status = 'pending'), 0) AS pending
      FROM payouts ${creatorId ? sql`WHERE creator_id = ${creatorId}` : sql``} GROUP BY creator_id
    )
    SELECT e.creator_id, e.amount::text AS earned, coalesce(p.paid, 0)::text AS paid, coalesce(p.pending, 0)::text AS pending,
           (e.amount + coalesce(m.amount, 0))::text AS owed
    FROM earned e LEFT JOIN moved m USING (creator_id) LEFT JOIN paid p USING (creator_id)
    ORDER BY e.creator_id
  `.execute(db);
  return rows.map((row) => ({
    creatorId: row.creator_id,
    earned: formatMoney(parseMoney(row.earned)),
    paid: formatMoney(parseMoney(row.paid)),
    pending: formatMoney(parseMoney(row.pending)),
    owed: formatMoney(parseMoney(row.owed)),
  }));
}

export async function runPayouts(db: Kysely<Database>, stripe: Stripe | undefined, settings: PayoutSettings, period: string): Promise<PayoutView[]> {
  if (!stripe) throw new AppError('unavailable', 'payouts are not configured (STRIPE_SECRET_KEY)');
  const accounts = await db.selectFrom('payout_accounts').select(['creator_id', 'stripe_account_id']).orderBy('creator_id').execute();
  const results: PayoutView[] = [];
  for (const account of accounts) {
    const payout = await db.transaction().execute((trx) => preparePayout(trx, settings, period, account.creator_id, account.stripe_account_id));
    if (!payout) continue;
    results.push(payout.status === 'pending' ? await transfer(db, stripe, payout) : payout);
  }
  return results;
}

/** The creator's payout for the period: the one made before, or a new one of everything owed (undefined: below the minimum). */
async function preparePayout(trx: Transaction<Database>, settings: PayoutSettings, period: string, creatorId: string, stripeAccountId: string): Promise<PayoutView | undefined> {
  await trx.selectFrom('user_profiles').select('id').where('id', '=', creatorId).forNoKeyUpdate().executeTakeFirstOrThrow();
  const existing = await trx.selectFrom('payouts').selectAll().where('creator_id', '=', creatorId).where('period', '=', period).executeTakeFirst();
  if (existing) return toView(existing);
  const [balance] = await creatorBalances(trx, creatorId);
  const amount = payable(parseMoney(balance?.owed ?? '0'), settings.minorPerCredit);
  if (amount.credits <= 0n || amount.credits < settings.minimum) return undefined;
  const row = await trx
    .insertInto('payouts')
    .values({ creator_id: creatorId, period, credits: formatMoney(amount.credits), amount_minor: amount.minor.toString(), currency: settings.currency, stripe_account_id: stripeAccountId })
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordPayoutMovement(trx, row.id, creatorId, 'payout', -amount.credits, amount.minor, settings.currency);
  return toView(row);
}

async function transfer(db: Kysely<Database>, stripe: Stripe, payout: PayoutView): Promise<PayoutView> {
  const account = await db.selectFrom('payouts').select('stripe_account_id').where('id', '=', payout.id).executeTakeFirstOrThrow();
  try {
    const made = await stripe.transfers.create(
      {
        amount: Number(payout.amountMinor),
        currency: payout.currency,
        destination: account.stripe_account_id,
        transfer_group: `payouts-${payout.period}`,
        metadata: { payout_id: payout.id, creator_id: payout.creatorId, period: payout.period },
      },
      { idempotencyKey: `payout:${payout.creatorId}:${payout.period}` },
    );
    const row = await db.updateTable('payouts').set({ status: 'paid', transfer_id: made.id, updated_at: new Date() }).where('id', '=', payout.id).where('status', '=', 'pending').returningAll().executeTakeFirst();
    return row ? toView(row) : payout;
  } catch (error) {
    // Stripe said no (a bad destination, the platform's balance): the payout failed and what is owed is restored.
    // Anything else (no answer) may have made the transfer: the payout stays pending for the next run to retry with
    // the same key.
    if (error instanceof Stripe.errors.StripeInvalidRequestError || error instanceof Stripe.errors.StripeCardError || error instanceof Stripe.errors.StripePermissionError) {
      return db.transaction().execute((trx) => failPayout(trx, payout.id, 'failed', error.message));
    }
    return { ...payout, failure: `transfer outcome unknown, retried by the next run: ${(error as Error).message}` };
  }
}

/** A period's payouts, by creator. */
export async function listPayouts(db: Kysely<Database>, period: string): Promise<PayoutView[]> {
  const rows = await db.selectFrom('payouts').selectAll().where('period', '=', period).orderBy('creator_id').execute();
  return rows.map(toView);
}

/** A payout's transfer failed or was reversed: what it took is owed again (once). */
export async function failPayout(trx: Transaction<Database>, payoutId: string, status: 'failed' | 'reversed', why: string): Promise<PayoutView> {
  const row = await trx.selectFrom('payouts').selectAll().where('id', '=', payoutId).forUpdate().executeTakeFirstOrThrow();
  if (row.status === 'failed' || row.status === 'reversed') return toView(row);
  const updated = await trx.updateTable('payouts').set({ status, failure: why, updated_at: new Date() }).where('id', '=', payoutId).returningAll().executeTakeFirstOrThrow();
  await recordPayoutMovement(trx, payoutId, row.creator_id, 'payout_reversal', parseMoney(row.credits), BigInt(row.amount_minor), row.currency);
  return toView(updated);
}

async function recordPayoutMovement(trx: Transaction<Database>, payoutId: string, creatorId: string, kind: 'payout' | 'payout_reversal', credits: Units, minor: bigint, currency: string): Promise<void> {
  const { id } = await trx
    .insertInto('money_movements')
    .values({ kind, user_id: creatorId, reference: `${kind}:${payoutId}`, credits: formatMoney(credits), amount_minor: minor.toString(), currency })
    .returning('id')
    .executeTakeFirstOrThrow();
  await trx
    .insertInto('movement_entries')
    .values([
      { movement_id: id, account_kind: 'creator', account_id: creatorId, amount: formatMoney(credits), kind },
      { movement_id: id, account_kind: 'cash', account_id: null, amount: formatMoney(-credits), kind },
    ])
    .execute();
}

function toView(row: { id: string; creator_id: string; period: string; credits: string; amount_minor: string; currency: string; status: string; transfer_id: string | null; failure: string | null }): PayoutView {
  return {
    id: row.id,
    creatorId: row.creator_id,
    period: row.period,
    credits: row.credits,
    amountMinor: String(row.amount_minor),
    currency: row.currency,
    status: row.status,
    transferId: row.transfer_id,
    failure: row.failure,
  };
}
