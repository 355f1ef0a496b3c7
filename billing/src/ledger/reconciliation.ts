/**
 * The reconciliation billing staff run: per UTC day of end_time, what sessions cost, what users were debited and
 * creators and the platform credited, adjustments to users, and which sessions' settlements do not balance; plus
 * sessions still open, ended sessions never settled, and users whose total_spent does not match their ledger; and
 * facts that were acknowledged but never written — billing jobs that failed for good, settled sessions whose
 * message_count differs from the messages stored for them.
 * Every sum is taken in SQL over numeric and added up in bigint units: exact.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { moneyText } from './money-text.ts';
import type { TimeRange } from './time-range.ts';

export interface ReconciliationSums {
  sessions: number;
  /** Σ sessions.total_cost. */
  sessionTotals: string;
  /** Σ −session_charge. */
  userDebits: string;
  creatorEarnings: string;
  platformFees: string;
  /** Σ adjustment amounts to users (positive: refunds). */
  adjustments: string;
  unbalancedSessions: number;
  balanced: boolean;
}

export interface ReconciliationDay extends ReconciliationSums {
  /** 'YYYY-MM-DD', UTC. */
  date: string;
}

export interface BalanceMismatch {
  userId: string;
  totalSpent: string;
  /** Σ −session_charge − Σ adjustments to the user. */
  ledgerSpent: string;
  /** totalSpent − ledgerSpent. */
  difference: string;
}

/** A settled session that acknowledged more (or fewer) messages than were stored: a lost fact. */
export interface MessageCountMismatch {
  sessionId: string;
  /** sessions.message_count: the messages the gateway acknowledged and counted. */
  messageCount: number;
  /** Rows in `messages` for the session. */
  storedMessages: number;
}

/** A billing job in the queue's failed set: its facts were never written (it stays there for a person to look at). */
export interface FailedBillingJob {
  id: string;
  name: string;
  /** The sessions its facts belong to. */
  sessionIds: string[];
  failedReason: string;
  /** ISO time of the failure. */
  failedAt: string | null;
}

/** A user whose balance the ledger does not explain: credits_remaining ≠ Σ of their user-account entries. */
export interface CreditMismatch {
  userId: string;
  creditsRemaining: string;
  /** Σ of the user's entries: sessions and adjustments (ledger_entries), openings, purchases, refunds (movement_entries). */
  ledgerCredits: string;
  /** creditsRemaining − ledgerCredits. */
  difference: string;
}

/** Money in and out through Stripe over the range (movements created in it); cash in minor units. */
export interface PaymentSums {
  purchases: number;
  cashInMinor: string;
  /** Given back to cards and taken by disputes. */
  cashOutMinor: string;
  creditsSold: string;
  /** Credits refunds and disputes took back from balances. */
  creditsTakenBack: string;
  /** Credits refunded or disputed after they were spent: the platform's loss. */
  platformLoss: string;
  /** Credits profiles were created with. */
  openingCredits: string;
  /** Subscription invoices paid (minor units) and the monthly credits they granted. */
  subscriptionCashMinor: string;
  grantedCredits: string;
}

export interface Reconciliation {
  ok: boolean;
  days: ReconciliationDay[];
  totals: ReconciliationSums;
  openSessions: number;
  endedUnsettled: string[];
  unbalancedSessions: string[];
  balanceMismatches: BalanceMismatch[];
  messageCountMismatches: MessageCountMismatch[];
  failedJobs: FailedBillingJob[];
  creditMismatches: CreditMismatch[];
  payments: PaymentSums;
  /** Money movements whose entries do not sum to zero (the database refuses them: always empty). */
  unbalancedMovements: string[];
}

export interface ReconcileOptions {
  /**
   * An ended session may wait this long for its settlement, and a settled one for its last messages, before it makes
   * the reconciliation fail. Default 5 min.
   */
  settleGraceMs?: number;
  /** The billing queue's failed jobs (they fail the reconciliation); default none known. */
  failedJobs?: FailedBillingJob[];
}

/** Most mismatched sessions listed (the count beyond it is still a failure). */
const MAX_LISTED = 1000;

/**
 * Settled sessions, ended within `range`, settled more than `graceMs` ago, whose message_count is not the number of
 * their stored messages.
 */
export async function messageCountMismatches(
  db: Kysely<Database>,
  range: TimeRange,
  graceMs: number,
): Promise<MessageCountMismatch[]> {
  const { rows } = await sql<{ id: string; message_count: number; stored: number }>`
    SELECT s.id, s.message_count, count(m.id)::int AS stored
    FROM sessions s
    LEFT JOIN messages m ON m.session_id = s.id
    WHERE s.settled_at IS NOT NULL
      AND s.settled_at < now() - make_interval(secs => ${graceMs / 1000})
      ${range.from ? sql`AND s.end_time >= ${range.from}` : sql``}
      ${range.to ? sql`AND s.end_time < ${range.to}` : sql``}
    GROUP BY s.id, s.message_count
    HAVING s.message_count <> count(m.id)
    ORDER BY s.id
    LIMIT ${MAX_LISTED}
  `.execute(db);
  return rows.map((row) => ({ sessionId: row.id, messageCount: row.message_count, storedMessages: row.stored }));
}

export async function reconcile(
  db: Kysely<Database>,
  range: TimeRange,
  options: ReconcileOptions = {},
): Promise<Reconciliation> {
  const graceMs = options.settleGraceMs ?? 5 * 60_000;
  // one snapshot for every part of the answer
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const days = await reconcileDays(trx, range);
      const open = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM sessions WHERE status <> 'ended'
      `.execute(trx);
      const unsettled = await sql<{ id: string; overdue: boolean }>`
        SELECT s.id,
               coalesce(s.end_time, ended.at, s.checkpoint_at, s.updated_at) < now() - make_interval(secs => ${graceMs / 1000}) AS overdue
        FROM sessions s
        LEFT JOIN LATERAL (
          SELECT max(e.at) AS at FROM session_events e WHERE e.session_id = s.id AND e.kind = 'ended'
        ) ended ON true
        WHERE s.settled_at IS NULL AND s.status = 'ended'
        ORDER BY s.id
      `.execute(trx);
      const mismatches = await sql<{ user_id: string; total_spent: string; ledger_spent: string }>`
        WITH ledger AS (
          SELECT account_id AS user_id,
                 coalesce(-sum(amount) FILTER (WHERE kind = 'session_charge'), 0)
                   - coalesce(sum(amount) FILTER (WHERE kind = 'adjustment'), 0) AS spent
          FROM ledger_entries
          WHERE account_kind = 'user'
          GROUP BY account_id
        )
        SELECT u.id AS user_id, u.total_spent::text AS total_spent, coalesce(l.spent, 0)::text AS ledger_spent
        FROM user_profiles u
        LEFT JOIN ledger l ON l.user_id = u.id
        WHERE u.total_spent <> coalesce(l.spent, 0)
        ORDER BY u.id
      `.execute(trx);

      const credits = await sql<{ user_id: string; credits_remaining: string; ledger_credits: string }>`
        WITH entries AS (
          SELECT account_id AS user_id, amount FROM ledger_entries WHERE account_kind = 'user'
          UNION ALL
          SELECT account_id, amount FROM movement_entries WHERE account_kind = 'user'
        ), ledger AS (
          SELECT user_id, sum(amount) AS credits FROM entries GROUP BY user_id
        )
        SELECT u.id AS user_id, u.credits_remaining::text AS credits_remaining, coalesce(l.credits, 0)::text AS ledger_credits
        FROM user_profiles u
        LEFT JOIN ledger l ON l.user_id = u.id
        WHERE u.credits_remaining <> coalesce(l.credits, 0)
        ORDER BY u.id
        LIMIT ${MAX_LISTED}
      `.execute(trx);
      const creditMismatches = credits.rows.map((row) => ({
        userId: row.user_id,
        creditsRemaining: moneyText(row.credits_remaining),
        ledgerCredits: moneyText(row.ledger_credits),
        difference: formatMoney(parseMoney(row.credits_remaining) - parseMoney(row.ledger_credits)),
      }));
      const payments = await paymentSums(trx, range);
      const unbalancedMovements = await sql<{ id: string }>`
        SELECT movement_id AS id FROM movement_entries GROUP BY movement_id HAVING sum(amount) <> 0 ORDER BY movement_id LIMIT ${MAX_LISTED}
      `.execute(trx);

      const balanceMismatches = mismatches.rows.map((row) => ({
        userId: row.user_id,
        totalSpent: moneyText(row.total_spent),
        ledgerSpent: moneyText(row.ledger_spent),
        difference: formatMoney(parseMoney(row.total_spent) - parseMoney(row.ledger_spent)),
      }));
      const endedUnsettled = unsettled.rows.map((row) => row.id);
      const mismatchedCounts = await messageCountMismatches(trx, range, graceMs);
      const failedJobs = options.failedJobs ?? [];
      return {
        ok:
          days.unbalancedSessions.length === 0 &&
          balanceMismatches.length === 0 &&
          unsettled.rows.every((row) => !row.overdue) &&
          mismatchedCounts.length === 0 &&
          failedJobs.length === 0 &&
          creditMismatches.length === 0 &&
          unbalancedMovements.rows.length === 0,
        days: days.days,
        totals: days.totals,
        openSessions: open.rows[0]?.n ?? 0,
        endedUnsettled,
        unbalancedSessions: days.unbalancedSessions,
        balanceMismatches,
        messageCountMismatches: mismatchedCounts,
        failedJobs,
        creditMismatches,
        payments,
        unbalancedMovements: unbalancedMovements.rows.map((row) => row.id),
      };
    });
}

async function paymentSums(db: Kysely<Database>, range: TimeRange): Promise<PaymentSums> {
  const { rows } = await sql<{ purchases: number; cash_in: string; cash_out: string; sold: string; taken_back: string; loss: string; opening: string; subscription_cash: string; granted: string }>`
    SELECT
      count(*) FILTER (WHERE m.kind = 'purchase')::int AS purchases,
      coalesce(sum(m.amount_minor) FILTER (WHERE m.kind = 'purchase'), 0)::text AS cash_in,
      coalesce(sum(m.amount_minor) FILTER (WHERE m.kind IN ('card_refund', 'dispute')), 0)::text AS cash_out,
      coalesce(sum(m.credits) FILTER (WHERE m.kind = 'purchase'), 0)::text AS sold,
      coalesce(-sum(m.credits) FILTER (WHERE m.kind IN ('card_refund', 'dispute')), 0)::text AS taken_back,
      coalesce((SELECT -sum(e.amount) FROM movement_entries e JOIN money_movements n ON n.id = e.movement_id
                WHERE e.kind = 'platform_loss'
                  ${range.from ? sql`AND n.created_at >= ${range.from}` : sql``}
                  ${range.to ? sql`AND n.created_at < ${range.to}` : sql``}), 0)::text AS loss,
      coalesce(sum(m.credits) FILTER (WHERE m.kind = 'opening_balance'), 0)::text AS opening,
      coalesce(sum(m.amount_minor) FILTER (WHERE m.kind = 'grant'), 0)::text AS subscription_cash,
      coalesce(sum(m.credits) FILTER (WHERE m.kind = 'grant'), 0)::text AS granted
    FROM money_movements m
    WHERE true
      ${range.from ? sql`AND m.created_at >= ${range.from}` : sql``}
      ${range.to ? sql`AND m.created_at < ${range.to}` : sql``}
  `.execute(db);
  const row = rows[0]!;
  return {
    purchases: row.purchases,
    cashInMinor: row.cash_in,
    cashOutMinor: row.cash_out,
    creditsSold: moneyText(row.sold),
    creditsTakenBack: moneyText(row.taken_back),
    platformLoss: moneyText(row.loss),
    openingCredits: moneyText(row.opening),
    subscriptionCashMinor: row.subscription_cash,
    grantedCredits: moneyText(row.granted),
  };
}

async function reconcileDays(
  db: Kysely<Database>,
  range: TimeRange,
): Promise<{ days: ReconciliationDay[]; totals: ReconciliationSums; unbalancedSessions: string[] }> {
  // per session first (its settlement balanced? its debit its total?), then per day: one row per day comes back
  const { rows } = await sql<DayRow>`
    WITH settled AS (
      SELECT s.id, (s.end_time AT TIME ZONE 'UTC')::date AS day, s.total_cost
      FROM sessions s
      WHERE s.settled_at IS NOT NULL
        ${range.from ? sql`AND s.end_time >= ${range.from}` : sql``}
        ${range.to ? sql`AND s.end_time < ${range.to}` : sql``}
    ),
    per_session AS (
      SELECT st.id, st.day, st.total_cost,
             coalesce(-sum(l.amount) FILTER (WHERE l.kind = 'session_charge'), 0) AS user_debit,
             coalesce(sum(l.amount) FILTER (WHERE l.kind = 'creator_earning'), 0) AS creator_earning,
             coalesce(sum(l.amount) FILTER (WHERE l.kind = 'platform_fee'), 0) AS platform_fee,
             coalesce(sum(l.amount) FILTER (WHERE l.kind = 'adjustment' AND l.account_kind = 'user'), 0) AS adjustments,
             coalesce(sum(l.amount) FILTER (WHERE l.adjustment_id IS NULL), 0) AS settlement_sum,
             count(l.id) FILTER (WHERE l.adjustment_id IS NULL) AS settlement_entries
      FROM settled st
      LEFT JOIN ledger_entries l ON l.session_id = st.id
      GROUP BY st.id, st.day, st.total_cost
    ),
    unbalanced_adjustments AS (
      SELECT DISTINCT l.session_id
      FROM ledger_entries l
      JOIN settled st ON st.id = l.session_id
      WHERE l.adjustment_id IS NOT NULL
      GROUP BY l.session_id, l.adjustment_id
      HAVING sum(l.amount) <> 0
    ),
    flagged AS (
      SELECT ps.*,
             (ps.settlement_sum <> 0 OR ps.settlement_entries <> 3 OR ps.user_debit <> ps.total_cost
               OR ua.session_id IS NOT NULL) AS unbalanced
      FROM per_session ps
      LEFT JOIN unbalanced_adjustments ua ON ua.session_id = ps.id
    )
    SELECT to_char(day, 'YYYY-MM-DD') AS date,
           count(*)::int AS sessions,
           sum(total_cost)::text AS session_totals,
           sum(user_debit)::text AS user_debits,
           sum(creator_earning)::text AS creator_earnings,
           sum(platform_fee)::text AS platform_fees,
           sum(adjustments)::text AS adjustments,
           coalesce(array_agg(id::text ORDER BY id) FILTER (WHERE unbalanced), '{}'::text[]) AS unbalanced
    FROM flagged
    GROUP BY day
    ORDER BY day
  `.execute(db);
  const totals = new Accumulator();
  const days = rows.map((row) => {
    totals.add(row);
    return { date: row.date, ...new Accumulator().add(row).result() };
  });
  return { days, totals: totals.result(), unbalancedSessions: rows.flatMap((row) => row.unbalanced) };
}

interface DayRow {
  date: string;
  sessions: number;
  session_totals: string;
  user_debits: string;
  creator_earnings: string;
  platform_fees: string;
  adjustments: string;
  /** Ids of the day's unbalanced sessions. */
  unbalanced: string[];
}

/** Sums days in bigint units: exact. */
class Accumulator {
  private sessions = 0;
  private sessionTotals = 0n;
  private userDebits = 0n;
  private creatorEarnings = 0n;
  private platformFees = 0n;
  private adjustments = 0n;
  private unbalanced = 0;

  add(row: DayRow): this {
    this.sessions += row.sessions;
    this.sessionTotals += parseMoney(row.session_totals);
    this.userDebits += parseMoney(row.user_debits);
    this.creatorEarnings += parseMoney(row.creator_earnings);
    this.platformFees += parseMoney(row.platform_fees);
    this.adjustments += parseMoney(row.adjustments);
    this.unbalanced += row.unbalanced.length;
    return this;
  }

  result(): ReconciliationSums {
    return {
      sessions: this.sessions,
      sessionTotals: formatMoney(this.sessionTotals),
      userDebits: formatMoney(this.userDebits),
      creatorEarnings: formatMoney(this.creatorEarnings),
      platformFees: formatMoney(this.platformFees),
      adjustments: formatMoney(this.adjustments),
      unbalancedSessions: this.unbalanced,
      balanced: this.unbalanced === 0,
    };
  }
}
