/**
 * Settles an ended session into Postgres, exactly once, in one transaction: the user is charged (never
 * more than their credits), the charge is split into creator earning and platform fee, three ledger
 * entries summing to zero are written, and the balances, clone totals and daily analytics move with them.
 * Running it again for the same session changes nothing and reports the first settlement.
 *
 * Locks are taken in one order — session, user, clone — so concurrent settlements cannot deadlock. They are
 * FOR NO KEY UPDATE (what an UPDATE of non-key columns takes), which does not conflict with the KEY SHARE
 * locks that foreign-key checks of concurrent inserts (sessions, ledger, analytics) hold on the same rows.
 * The clone lock also serialises settlements of one clone, so each retention computation sees all earlier ones.
 */
import { sql, type Kysely } from 'kysely';
import type { SettleSessionJob, SettlementResult } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { formatMoney, maxUnits, minUnits, parseMoney, type Ratio } from '#shared/money/money.ts';
import { splitTotal } from '#shared/money/pricing.ts';
import { sessionLedgerEntries } from '../ledger/session-ledger-entries.ts';
import { ensureSession } from './ensure-session.ts';
import { recordSessionEvent } from './record-session-event.ts';
import { retentionRateSql } from './retention-rate.ts';

/** The little of a logger settlement needs (pino fits). */
export interface SettleLogger {
  warn(context: object, message: string): void;
}

export interface SettleOptions {
  /** Told when the charge had to be capped at the user's credits. Default: silent. */
  log?: SettleLogger;
}

/** The UTC calendar date of an ISO instant, 'YYYY-MM-DD'. */
export function utcDate(instant: string): string {
  return new Date(instant).toISOString().slice(0, 10);
}

export async function settleSession(
  db: Kysely<Database>,
  job: SettleSessionJob,
  platformFeeRate: Ratio,
  options: SettleOptions = {},
): Promise<SettlementResult> {
  const { sessionId, userId, cloneId } = job.session;
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    const session = await trx
      .selectFrom('sessions')
      .select(['settled_at'])
      .where('id', '=', sessionId)
      .forNoKeyUpdate()
      .executeTakeFirstOrThrow();
    if (session.settled_at) return previousSettlement(trx, sessionId, userId);

    const user = await trx
      .selectFrom('user_profiles')
      .select(['credits_remaining'])
      .where('id', '=', userId)
      .forNoKeyUpdate()
      .executeTakeFirstOrThrow();
    const requested = parseMoney(job.totalCost);
    const credits = parseMoney(user.credits_remaining);
    const charge = maxUnits(0n, minUnits(requested, credits));
    if (charge !== requested) {
      options.log?.warn(
        { sessionId, userId, requested: job.totalCost, credits: user.credits_remaining, charged: formatMoney(charge) },
        'settlement charge capped at the credits remaining',
      );
    }
    const split = splitTotal(charge, platformFeeRate);
    const chargeText = formatMoney(charge);
    const earningText = formatMoney(split.creatorEarning);

    const clone = await trx
      .updateTable('clones')
      .set({
        total_sessions: sql`total_sessions + 1`,
        total_earnings: sql`total_earnings + ${earningText}::numeric`,
      })
      .where('id', '=', cloneId)
      .returning(['creator_id', 'average_rating'])
      .executeTakeFirstOrThrow();

    await trx
      .updateTable('sessions')
      .set({
        status: 'ended',
        end_time: new Date(job.endTime),
        duration_minutes: job.durationMinutes,
        active_ms: job.activeMs,
        total_cost: chargeText,
        message_count: job.messageCount,
        end_reason: job.reason,
        state_version: sql`greatest(state_version, ${job.version}::integer)`,
        settled_at: sql`now()`,
      })
      .where('id', '=', sessionId)
      .execute();

    // the end is on the audit trail even when its state job never arrived (a session settled by the reconciler)
    await recordSessionEvent(trx, {
      sessionId,
      version: job.version,
      status: 'ended',
      at: new Date(job.endTime),
      activeMs: job.activeMs,
      reason: job.reason,
    });
    await trx
      .insertInto('ledger_entries')
      .values(sessionLedgerEntries({ sessionId, userId, creatorId: clone.creator_id }, split))
      .execute();

    const balance = await trx
      .updateTable('user_profiles')
      .set({
        credits_remaining: sql`credits_remaining - ${chargeText}::numeric`,
        total_spent: sql`total_spent + ${chargeText}::numeric`,
      })
      .where('id', '=', userId)
      .returning(['credits_remaining', 'credits_version'])
      .executeTakeFirstOrThrow();
    await trx
      .updateTable('sessions')
      .set({ settled_credits_version: balance.credits_version })
      .where('id', '=', sessionId)
      .execute();

    const day = utcDate(job.endTime);
    await trx
      .insertInto('user_analytics')
      .values({
        user_id: userId,
        date: day,
        sessions_count: 1,
        messages_sent: job.userMessageCount,
        total_duration_minutes: job.durationMinutes,
        total_spent: chargeText,
      })
      .onConflict((oc) =>
        oc.columns(['user_id', 'date']).doUpdateSet({
          sessions_count: sql`user_analytics.sessions_count + excluded.sessions_count`,
          messages_sent: sql`user_analytics.messages_sent + excluded.messages_sent`,
          total_duration_minutes: sql`user_analytics.total_duration_minutes + excluded.total_duration_minutes`,
          total_spent: sql`user_analytics.total_spent + excluded.total_spent`,
        }),
      )
      .execute();

    await trx
      .insertInto('creator_analytics')
      .values({
        creator_id: clone.creator_id,
        clone_id: cloneId,
        date: day,
        total_earnings: earningText,
        sessions_count: 1,
        average_rating: clone.average_rating,
        user_retention_rate: retentionRateSql(cloneId, sql`${day}::date`),
      })
      .onConflict((oc) =>
        oc.columns(['creator_id', 'clone_id', 'date']).doUpdateSet({
          total_earnings: sql`creator_analytics.total_earnings + excluded.total_earnings`,
          sessions_count: sql`creator_analytics.sessions_count + excluded.sessions_count`,
          average_rating: sql`excluded.average_rating`,
          user_retention_rate: sql`excluded.user_retention_rate`,
        }),
      )
      .execute();
    // A late settlement (ending before days already recorded) changes who counts as returning on those days.
    await trx
      .updateTable('creator_analytics')
      .set({ user_retention_rate: retentionRateSql(cloneId, sql.ref('creator_analytics.date')) })
      .where('clone_id', '=', cloneId)
      .where('date', '>', day)
      .execute();

    return {
      sessionId,
      userId,
      applied: true,
      creditsRemaining: formatMoney(parseMoney(balance.credits_remaining)),
      creditsVersion: balance.credits_version,
      charged: chargeText,
      creatorEarning: earningText,
      platformFee: formatMoney(split.platformFee),
    };
  });
}

/** The result of a settlement that committed before: today's balance, the amounts from its ledger entries. */
async function previousSettlement(
  db: Kysely<Database>,
  sessionId: string,
  userId: string,
): Promise<SettlementResult> {
  const balance = await db
    .selectFrom('user_profiles')
    .select(['credits_remaining', 'credits_version'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow();
  const entries = await db
    .selectFrom('ledger_entries')
    .select(['kind', 'amount'])
    .where('session_id', '=', sessionId)
    .execute();
  const amount = (kind: string) => parseMoney(entries.find((e) => e.kind === kind)?.amount ?? '0');
  return {
    sessionId,
    userId,
    applied: false,
    creditsRemaining: formatMoney(parseMoney(balance.credits_remaining)),
    creditsVersion: balance.credits_version,
    charged: formatMoney(-amount('session_charge')),
    creatorEarning: formatMoney(amount('creator_earning')),
    platformFee: formatMoney(amount('platform_fee')),
  };
}
