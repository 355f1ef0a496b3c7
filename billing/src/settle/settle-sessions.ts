/**
 * Settles many ended sessions into Postgres in one transaction, each exactly once: every user is charged (never
 * more than their credits, their sessions taken in the order given), each charge is split into creator earning and
 * platform fee, three ledger entries summing to zero are written per session, and the balances, clone totals and
 * daily analytics move by the batch's sums. A session settled before (or twice in the batch) changes nothing and
 * reports its first settlement.
 *
 * About seven round trips whatever the batch size: check/create the sessions; lock them; lock their users; one
 * statement for the users' balances, the sessions, the audit trail, the ledger and the users' day rows; then, last,
 * the clones' totals and the creators' day rows; COMMIT. Locks are taken in one order — sessions, users, clones,
 * each in id order — so concurrent settlements cannot deadlock. They are FOR NO KEY UPDATE (what an UPDATE of
 * non-key columns takes), which does not conflict with the KEY SHARE locks that foreign-key checks of concurrent
 * inserts hold on the same rows. The clone is locked last: its row and its day row are what every settlement of a
 * popular clone shares, so they are held only for two statements and the commit, once per batch rather than once per
 * session. The clone lock also serialises the retention computations of one clone (each statement after it sees
 * every earlier settlement).
 *
 * With `skipLockedUsers`, sessions whose user another transaction holds (another batch, an adjustment) are not
 * waited for but answered `deferred`: the caller settles them on their own, so one busy user never holds back a
 * whole batch.
 */
import { moneyText } from '../ledger/money-text.ts';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { SettleSessionJob, SettlementResult } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { formatMoney, maxUnits, minUnits, parseMoney, type Ratio, type Units } from '#shared/money/money.ts';
import { splitTotal, type Split } from '#shared/money/pricing.ts';
import { sessionLedgerEntries, type LedgerEntryDraft } from '../ledger/session-ledger-entries.ts';
import type { BillingJobError } from './billing-job-error.ts';
import { ensureSessions } from './ensure-session.ts';
import { retentionRateSql } from './retention-rate.ts';

/** The little of a logger settlement needs (pino fits). */
export interface SettleLogger {
  warn(context: object, message: string): void;
}

export interface SettleOptions {
  /** Told when a charge had to be capped at the user's credits. Default: silent. */
  log?: SettleLogger;
  /** Answer `deferred` for sessions whose user row another transaction holds, instead of waiting. Default false. */
  skipLockedUsers?: boolean;
}

export type SettleOutcome = { result: SettlementResult } | { error: BillingJobError } | { deferred: true };

/**
 * Waits until no other transaction holds the user's row, holding nothing meanwhile: a deferred settlement waits here
 * rather than inside its transaction (where it would hold its session row, and the session's state jobs would queue
 * behind it), then settles alone.
 */
export async function waitForUser(db: Kysely<Database>, userId: string): Promise<void> {
  await db.transaction().execute((trx) =>
    trx.selectFrom('user_profiles').select('id').where('id', '=', userId).forNoKeyUpdate().execute(),
  );
}

/** The UTC calendar date of an ISO instant, 'YYYY-MM-DD'. */
export function utcDate(instant: string): string {
  return new Date(instant).toISOString().slice(0, 10);
}

interface LockedSession {
  id: string;
  settled: boolean;
  creator_id: string;
}

/** A session this batch settles now. */
interface Settling {
  index: number;
  job: SettleSessionJob;
  creatorId: string;
  charge: Units;
  split: Split;
}

const toJson = (rows: unknown[]) => JSON.stringify(rows);

export async function settleSessions(
  db: Kysely<Database>,
  jobs: readonly SettleSessionJob[],
  platformFeeRate: Ratio,
  options: SettleOptions = {},
): Promise<SettleOutcome[]> {
  if (jobs.length === 0) return [];
  return db.transaction().execute((trx) => settleInTransaction(trx, jobs, platformFeeRate, options));
}

async function settleInTransaction(
  trx: Transaction<Database>,
  jobs: readonly SettleSessionJob[],
  platformFeeRate: Ratio,
  options: SettleOptions,
): Promise<SettleOutcome[]> {
  const outcomes: (SettleOutcome | undefined)[] = jobs.map(() => undefined);

  // 1. The sessions exist and belong to the jobs' parties (a job that names others is refused alone).
  const check = await ensureSessions(trx, jobs.map((job) => job.session));
  jobs.forEach((job, index) => {
    const error = check(job.session);
    if (error) outcomes[index] = { error };
  });
  const accepted = jobs.map((job, index) => ({ job, index })).filter(({ index }) => !outcomes[index]);
  if (accepted.length === 0) return outcomes as SettleOutcome[];

  // 2. Lock the sessions, in id order; the first job of each session settles it, any other is a duplicate.
  const sessionIds = [...new Set(accepted.map(({ job }) => job.session.sessionId))];
  const { rows: lockedRows } = await sql<LockedSession>`
    SELECT s.id, s.settled_at IS NOT NULL AS settled, c.creator_id
      FROM sessions s JOIN clones c ON c.id = s.clone_id
     WHERE s.id = ANY(${sessionIds}::uuid[])
     ORDER BY s.id
       FOR NO KEY UPDATE OF s`.execute(trx);
  const locked = new Map(lockedRows.map((row) => [row.id, row]));
  const primary = new Map<string, number>();
  for (const { job, index } of accepted) {
    const sessionId = job.session.sessionId;
    if (!locked.has(sessionId)) throw new Error(`session ${sessionId} vanished while being settled`);
    if (!primary.has(sessionId)) primary.set(sessionId, index);
  }
  const toSettle = accepted.filter(({ job, index }) => primary.get(job.session.sessionId) === index && !locked.get(job.session.sessionId)!.settled);

  // 3. Lock their users, in id order (skipping those another transaction holds, when asked to).
  const userIds = [...new Set(toSettle.map(({ job }) => job.session.userId))].sort();
  const credits = new Map<string, Units>();
  if (userIds.length > 0) {
    let query = trx
      .selectFrom('user_profiles')
      .select(['id', 'credits_remaining'])
      .where('id', 'in', userIds)
      .orderBy('id')
      .forNoKeyUpdate();
    if (options.skipLockedUsers) query = query.skipLocked();
    for (const user of await query.execute()) credits.set(user.id, parseMoney(user.credits_remaining));
  }
  const deferredSessions = new Set<string>();
  for (const { job } of toSettle) {
    if (credits.has(job.session.userId)) continue;
    if (!options.skipLockedUsers) throw new Error(`user ${job.session.userId} of session ${job.session.sessionId} not found`);
    deferredSessions.add(job.session.sessionId);
  }
  for (const { job, index } of accepted) if (deferredSessions.has(job.session.sessionId)) outcomes[index] = { deferred: true };

  // 4. Charges, in the order given: each capped at what its user has left.
  const settling: Settling[] = [];
  for (const { job, index } of toSettle) {
    const { sessionId, userId } = job.session;
    if (deferredSessions.has(sessionId)) continue;
    const requested = parseMoney(job.totalCost);
    const left = credits.get(userId)!;
    const charge = maxUnits(0n, minUnits(requested, left));
    credits.set(userId, left - charge);
    if (charge !== requested) {
      options.log?.warn(
        { sessionId, userId, requested: job.totalCost, credits: formatMoney(left), charged: formatMoney(charge) },
        'settlement charge capped at the credits remaining',
      );
    }
    settling.push({ index, job, creatorId: locked.get(sessionId)!.creator_id, charge, split: splitTotal(charge, platformFeeRate) });
  }

  const balances = await settleUsersAndSessions(trx, settling);
  for (const s of settling) {
    const balance = balances.get(s.job.session.userId)!;
    outcomes[s.index] = {
      result: {
        sessionId: s.job.session.sessionId,
        userId: s.job.session.userId,
        applied: true,
        creditsRemaining: balance.creditsRemaining,
        creditsVersion: balance.creditsVersion,
        charged: formatMoney(s.charge),
        creatorEarning: formatMoney(s.split.creatorEarning),
        platformFee: formatMoney(s.split.platformFee),
      },
    };
  }

  // 5. Sessions settled before (or by another job of this batch): their first settlement, today's balance.
  const previous = accepted.filter(({ index }) => !outcomes[index]);
  if (previous.length > 0) {
    const results = await previousSettlements(trx, previous.map(({ job }) => job));
    for (const { job, index } of previous) outcomes[index] = { result: results.get(job.session.sessionId)! };
  }

  // 6. Last, the rows every settlement of a clone shares.
  await settleClones(trx, settling);
  return outcomes as SettleOutcome[];
}

interface Balance {
  creditsRemaining: string;
  creditsVersion: string;
}

/**
 * One statement: debit each user the sum of their charges (one UPDATE per user, so credits_version moves once per
 * user and batch: the snapshot at that version includes every session of the batch), mark the sessions settled with
 * that version, append their end to the audit trail, write their ledger entries and add to the users' day rows.
 */
async function settleUsersAndSessions(trx: Transaction<Database>, settling: readonly Settling[]): Promise<Map<string, Balance>> {
  const balances = new Map<string, Balance>();
  if (settling.length === 0) return balances;
  const charges = new Map<string, Units>();
  const days = new Map<string, { user_id: string; date: string; sessions_count: number; messages_sent: number; total_duration_minutes: number; spent: Units }>();
  const ledger: LedgerEntryDraft[] = [];
  for (const { job, charge, split, creatorId } of settling) {
    const { sessionId, userId } = job.session;
    charges.set(userId, (charges.get(userId) ?? 0n) + charge);
    const date = utcDate(job.endTime);
    const key = `${userId}/${date}`;
    const day = days.get(key) ?? { user_id: userId, date, sessions_count: 0, messages_sent: 0, total_duration_minutes: 0, spent: 0n };
    day.sessions_count += 1;
    day.messages_sent += job.userMessageCount;
    day.total_duration_minutes += job.durationMinutes;
    day.spent += charge;
    days.set(key, day);
    ledger.push(...sessionLedgerEntries({ sessionId, userId, creatorId }, split));
  }
  const users = [...charges].map(([id, charge]) => ({ id, charge: formatMoney(charge) }));
  const sessions = settling.map(({ job, charge }) => ({
    id: job.session.sessionId,
    user_id: job.session.userId,
    version: job.version,
    end_time: new Date(job.endTime).toISOString(),
    duration_minutes: job.durationMinutes,
    active_ms: job.activeMs,
    total_cost: formatMoney(charge),
    message_count: job.messageCount,
    end_reason: job.reason,
  }));
  const userDays = [...days.values()].map(({ spent, ...day }) => ({ ...day, total_spent: formatMoney(spent) }));

  const { rows } = await sql<{ id: string; credits_remaining: string; credits_version: string; settled: string }>`
    WITH uv AS (
      SELECT * FROM jsonb_to_recordset(${toJson(users)}::jsonb) AS x(id uuid, charge numeric)
    ), u AS (
      UPDATE user_profiles p
         SET credits_remaining = p.credits_remaining - uv.charge,
             total_spent = p.total_spent + uv.charge
        FROM uv
       WHERE p.id = uv.id
      RETURNING p.id, p.credits_remaining, p.credits_version
    ), sv AS (
      SELECT * FROM jsonb_to_recordset(${toJson(sessions)}::jsonb)
        AS x(id uuid, user_id uuid, version integer, end_time timestamptz, duration_minutes integer, active_ms bigint,
             total_cost numeric, message_count integer, end_reason text)
    ), s AS (
      UPDATE sessions t
         SET status = 'ended',
             end_time = sv.end_time,
             duration_minutes = sv.duration_minutes,
             active_ms = sv.active_ms,
             total_cost = sv.total_cost,
             message_count = sv.message_count,
             end_reason = sv.end_reason,
             state_version = greatest(t.state_version, sv.version),
             settled_at = now(),
             settled_credits_version = u.credits_version
        FROM sv JOIN u ON u.id = sv.user_id
       WHERE t.id = sv.id AND t.settled_at IS NULL
      RETURNING t.id
    ), ev AS (
      -- the end is on the audit trail even when its state job never arrived (a session settled by the reconciler)
      INSERT INTO session_events (session_id, version, kind, at, active_ms, reason)
      SELECT id, version, 'ended', end_time, active_ms, nullif(end_reason, '') FROM sv ORDER BY id
      ON CONFLICT (session_id, version) DO NOTHING
    ), le AS (
      INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind)
      SELECT session_id, account_kind, account_id, amount, kind
        FROM jsonb_to_recordset(${toJson(ledger)}::jsonb)
          AS x(session_id uuid, account_kind text, account_id uuid, amount numeric, kind text)
    ), ua AS (
      INSERT INTO user_analytics (user_id, date, sessions_count, messages_sent, total_duration_minutes, total_spent)
      SELECT user_id, date, sessions_count, messages_sent, total_duration_minutes, total_spent
        FROM jsonb_to_recordset(${toJson(userDays)}::jsonb)
          AS x(user_id uuid, date date, sessions_count integer, messages_sent integer, total_duration_minutes integer, total_spent numeric)
       ORDER BY user_id, date
      ON CONFLICT (user_id, date) DO UPDATE SET
        sessions_count = user_analytics.sessions_count + excluded.sessions_count,
        messages_sent = user_analytics.messages_sent + excluded.messages_sent,
        total_duration_minutes = user_analytics.total_duration_minutes + excluded.total_duration_minutes,
        total_spent = user_analytics.total_spent + excluded.total_spent
    )
    SELECT u.id, u.credits_remaining, u.credits_version, (SELECT count(*) FROM s)::text AS settled FROM u`.execute(trx);
  // Every session was locked unsettled and every user locked: anything else is a bug, and rolls everything back.
  if (rows.length !== users.length || Number(rows[0]?.settled) !== sessions.length) {
    throw new Error(`settlement wrote ${rows[0]?.settled ?? 0} of ${sessions.length} sessions and ${rows.length} of ${users.length} users`);
  }
  for (const row of rows) {
    balances.set(row.id, { creditsRemaining: moneyText(row.credits_remaining), creditsVersion: row.credits_version });
  }
  return balances;
}

/**
 * The clones' totals and the creators' day rows, by the batch's sums, with each day's retention recomputed — and
 * that of later days already recorded, which a late settlement changes. Two statements: the clone UPDATE takes the
 * locks (in id order), the analytics statement runs after it, so its snapshot sees every settlement before.
 */
async function settleClones(trx: Transaction<Database>, settling: readonly Settling[]): Promise<void> {
  if (settling.length === 0) return;
  const clones = new Map<string, { id: string; sessions: number; earnings: Units }>();
  const days = new Map<string, { clone_id: string; date: string; sessions_count: number; earnings: Units }>();
  for (const { job, split } of settling) {
    const cloneId = job.session.cloneId;
    const clone = clones.get(cloneId) ?? { id: cloneId, sessions: 0, earnings: 0n };
    clone.sessions += 1;
    clone.earnings += split.creatorEarning;
    clones.set(cloneId, clone);
    const date = utcDate(job.endTime);
    const key = `${cloneId}/${date}`;
    const day = days.get(key) ?? { clone_id: cloneId, date, sessions_count: 0, earnings: 0n };
    day.sessions_count += 1;
    day.earnings += split.creatorEarning;
    days.set(key, day);
  }
  const cloneRows = [...clones.values()].map(({ earnings, ...clone }) => ({ ...clone, earnings: formatMoney(earnings) }));
  const { rows: updated } = await sql<{ id: string; creator_id: string; average_rating: string }>`
    WITH x AS (
      SELECT * FROM jsonb_to_recordset(${toJson(cloneRows)}::jsonb) AS x(id uuid, sessions integer, earnings numeric)
    ), locked AS (
      SELECT c.id FROM clones c WHERE c.id IN (SELECT id FROM x) ORDER BY c.id FOR NO KEY UPDATE
    )
    UPDATE clones c
       SET total_sessions = c.total_sessions + x.sessions,
           total_earnings = c.total_earnings + x.earnings
      FROM x JOIN locked l ON l.id = x.id
     WHERE c.id = x.id
    RETURNING c.id, c.creator_id, c.average_rating`.execute(trx);
  if (updated.length !== cloneRows.length) throw new Error(`settlement updated ${updated.length} of ${cloneRows.length} clones`);
  const cloneOf = new Map(updated.map((row) => [row.id, row]));
  const dayRows = [...days.values()].map(({ earnings, ...day }) => ({
    ...day,
    creator_id: cloneOf.get(day.clone_id)!.creator_id,
    average_rating: cloneOf.get(day.clone_id)!.average_rating,
    total_earnings: formatMoney(earnings),
  }));
  await sql`
    WITH x AS (
      SELECT * FROM jsonb_to_recordset(${toJson(dayRows)}::jsonb)
        AS x(creator_id uuid, clone_id uuid, date date, total_earnings numeric, sessions_count integer, average_rating numeric)
    ), later AS (
      UPDATE creator_analytics a
         SET user_retention_rate = ${retentionRateSql(sql.ref('a.clone_id'), sql.ref('a.date'))}
        FROM (SELECT clone_id, min(date) AS day FROM x GROUP BY clone_id) m
       WHERE a.clone_id = m.clone_id
         AND a.date > m.day
         AND NOT EXISTS (SELECT 1 FROM x WHERE x.creator_id = a.creator_id AND x.clone_id = a.clone_id AND x.date = a.date)
    )
    INSERT INTO creator_analytics (creator_id, clone_id, date, total_earnings, sessions_count, average_rating, user_retention_rate)
    SELECT x.creator_id, x.clone_id, x.date, x.total_earnings, x.sessions_count, x.average_rating,
           ${retentionRateSql(sql.ref('x.clone_id'), sql.ref('x.date'))}
      FROM x
     ORDER BY x.creator_id, x.clone_id, x.date
    ON CONFLICT (creator_id, clone_id, date) DO UPDATE SET
      total_earnings = creator_analytics.total_earnings + excluded.total_earnings,
      sessions_count = creator_analytics.sessions_count + excluded.sessions_count,
      average_rating = excluded.average_rating,
      user_retention_rate = excluded.user_retention_rate`.execute(trx);
}

/** The results of sessions settled before: today's balance, the amounts from their settlement's ledger entries. */
async function previousSettlements(
  trx: Transaction<Database>,
  jobs: readonly SettleSessionJob[],
): Promise<Map<string, SettlementResult>> {
  const sessionIds = [...new Set(jobs.map((job) => job.session.sessionId))];
  const userIds = [...new Set(jobs.map((job) => job.session.userId))];
  const users = await trx.selectFrom('user_profiles').select(['id', 'credits_remaining', 'credits_version']).where('id', 'in', userIds).execute();
  const entries = await trx
    .selectFrom('ledger_entries')
    .select(['session_id', 'kind', 'amount'])
    .where('session_id', 'in', sessionIds)
    .where('adjustment_id', 'is', null)
    .execute();
  const userOf = new Map(users.map((u) => [u.id, u]));
  const entryOf = new Map(entries.map((e) => [`${e.session_id}/${e.kind}`, e.amount]));
  const results = new Map<string, SettlementResult>();
  for (const job of jobs) {
    const { sessionId, userId } = job.session;
    const balance = userOf.get(userId)!;
    const amount = (kind: string) => parseMoney(entryOf.get(`${sessionId}/${kind}`) ?? '0');
    results.set(sessionId, {
      sessionId,
      userId,
      applied: false,
      creditsRemaining: moneyText(balance.credits_remaining),
      creditsVersion: balance.credits_version,
      charged: formatMoney(-amount('session_charge')),
      creatorEarning: formatMoney(amount('creator_earning')),
      platformFee: formatMoney(amount('platform_fee')),
    });
  }
  return results;
}
