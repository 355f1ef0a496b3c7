/**
 * Reconciles Postgres with the live state in Redis, on start and every RECONCILE_MS. Postgres is the source of
 * truth for money; Redis holds live state that may be lost (a flush, a failover):
 * - a session unsettled in Postgres whose live state is gone is ended (reason `state_lost`, or the reason it had
 *   already ended with) and settled at its last checkpoint — never above what the user had used;
 * - a session ended in Redis but still unsettled in Postgres a while later (its settlement job was lost) is settled
 *   from the live state's final totals.
 * Settling is idempotent, so racing the normal flow is harmless. Each run also looks for lost facts: settled
 * sessions whose message_count differs from their stored messages (logged as errors, counted for a day in /metrics).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Ratio } from '#shared/money/money.ts';
import { formatMoney, minUnits, parseMoney } from '#shared/money/money.ts';
import { durationMinutes, timeCost } from '#shared/money/pricing.ts';
import type { SessionHeader, SettleSessionJob, SettlementResult } from '#shared/contract/billing-jobs.ts';
import type { Database, SessionRow } from '#shared/db/schema.ts';
import type { SessionStore } from '#shared/live-state/session-store.ts';
import { settleJobFromLive } from '#shared/live-state/outbox-jobs.ts';
import { messageCountMismatches, type MessageCountMismatch } from '../ledger/reconciliation.ts';
import { settleSession } from '../settle/settle-session.ts';

export interface ReconcilerOptions {
  db: Kysely<Database>;
  store: SessionStore;
  platformFeeRate: Ratio;
  logger: Logger;
  /** How often to run (config RECONCILE_MS). */
  intervalMs: number;
  /** A session ended in Redis is left to the normal flow for this long before the reconciler settles it. */
  endedGraceMs: number;
  /** Told after each settlement it makes (the billing process refreshes the user's live balance). */
  onSettled?: (result: SettlementResult) => Promise<void>;
  /** Told each run's report (the billing process counts lost facts in /metrics). */
  onReport?: (report: ReconcileReport) => void;
}

/** How far back the first run looks for sessions whose messages were lost, and how long a finding is counted. */
const LOST_MESSAGES_WINDOW_MS = 24 * 3600_000;
/**
 * Later runs look only at sessions that ended since the run before, less this much (a settlement that came late
 * is still checked): an hour of sessions every RECONCILE_MS instead of a day of them.
 */
const LOST_MESSAGES_OVERLAP_MS = 3600_000;

export interface ReconcileReport {
  checked: number;
  /** Sessions whose live state was gone, settled at their last checkpoint. */
  stateLost: string[];
  /** Sessions ended in Redis whose settlement had not happened, settled from the live state. */
  resettled: string[];
  /**
   * Users with an open session but no entry in the due schedule (lost with a Redis restart or a failover: it is
   * written apart from the script), advanced and scheduled again.
   */
  rescheduled: string[];
  /** Settled sessions, among those this run looked at, that acknowledged other than their stored messages. */
  messageCountMismatches: MessageCountMismatch[];
  /** Such sessions found by this reconciler in the last day (what /metrics reports). */
  lostMessageSessions: number;
}

function headerOf(row: SessionRow): SessionHeader {
  return {
    sessionId: row.id,
    userId: row.user_id,
    cloneId: row.clone_id,
    type: row.session_type,
    ratePerMinute: formatMoney(parseMoney(row.rate_per_minute)),
    startTime: new Date(row.start_time).toISOString(),
  };
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** Where the last look for lost messages began (ms); undefined before the first. */
  private lostMessagesCheckedAt: number | undefined;
  /** Sessions found with lost messages → when (ms), forgotten after a day. */
  private readonly lostMessages = new Map<string, number>();

  constructor(private readonly options: ReconcilerOptions) {}

  start(): void {
    const run = () => {
      this.running ??= this.runOnce()
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'reconcile failed'))
        .finally(() => (this.running = undefined));
    };
    run();
    this.timer = setInterval(run, this.options.intervalMs);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async runOnce(): Promise<ReconcileReport> {
    const { db, store, logger } = this.options;
    const rows = await db.selectFrom('sessions').selectAll().where('settled_at', 'is', null).execute();
    const report: ReconcileReport = { checked: rows.length, stateLost: [], resettled: [], rescheduled: [], messageCountMismatches: [], lostMessageSessions: 0 };
    for (const row of rows) {
      const live = await store.peek(row.user_id, row.id);
      if (live && live.status !== 'ended') {
        // an open session always has something due (idle, timeout, exhaustion, a checkpoint): without an entry nothing
        // would run it. The advance applies what is due at its instants; its next instant goes back in the schedule
        // (the account's note that it is scheduled cannot be trusted: that entry is what was lost).
        if (!report.rescheduled.includes(row.user_id) && !(await store.isScheduled(row.user_id))) {
          const outcome = await store.advance(row.user_id);
          if (outcome.nextDue !== null) await store.scheduleDue(row.user_id, outcome.nextDue);
          report.rescheduled.push(row.user_id);
        }
        continue;
      }
      if (live) {
        if (Date.now() - (live.endedAt ?? 0) < this.options.endedGraceMs) continue;
        await this.settle(settleJobFromLive(live));
        report.resettled.push(row.id);
      } else {
        await this.settle(await this.atCheckpoint(row));
        report.stateLost.push(row.id);
      }
    }
    const now = Date.now();
    const since = this.lostMessagesCheckedAt === undefined ? now - LOST_MESSAGES_WINDOW_MS : this.lostMessagesCheckedAt - LOST_MESSAGES_OVERLAP_MS;
    report.messageCountMismatches = await messageCountMismatches(db, { from: new Date(since), to: undefined }, this.options.endedGraceMs);
    this.lostMessagesCheckedAt = now;
    for (const mismatch of report.messageCountMismatches) this.lostMessages.set(mismatch.sessionId, now);
    for (const [sessionId, foundAt] of this.lostMessages) if (foundAt < now - LOST_MESSAGES_WINDOW_MS) this.lostMessages.delete(sessionId);
    report.lostMessageSessions = this.lostMessages.size;
    if (report.messageCountMismatches.length > 0) {
      logger.error({ sessions: report.messageCountMismatches }, 'settled sessions whose acknowledged messages were not all stored');
    }
    this.options.onReport?.(report);
    if (report.stateLost.length + report.resettled.length + report.rescheduled.length > 0) {
      logger.warn({ ...report }, 'reconciler settled sessions the normal flow had not');
    } else {
      logger.debug({ checked: report.checked }, 'reconciled');
    }
    return report;
  }

  /** The settlement of a session whose live state is lost: its last checkpoint, as Postgres recorded it. */
  private async atCheckpoint(row: SessionRow): Promise<SettleSessionJob> {
    const activeMs = Number(row.active_ms);
    const total = parseMoney(row.checkpoint_cost);
    const time = minUnits(timeCost(parseMoney(row.rate_per_minute), activeMs), total);
    const users = await this.options.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('session_id', '=', row.id)
      .where('sender_type', '=', 'user')
      .executeTakeFirstOrThrow();
    return {
      session: headerOf(row),
      version: row.state_version + 1,
      endTime: (row.checkpoint_at ?? new Date(row.start_time)).toISOString(),
      reason: row.status === 'ended' && row.end_reason ? row.end_reason : 'state_lost',
      activeMs,
      durationMinutes: durationMinutes(activeMs),
      timeCost: formatMoney(time),
      aiCost: formatMoney(total - time),
      totalCost: formatMoney(total),
      messageCount: row.message_count,
      userMessageCount: Number(users.n),
    };
  }

  private async settle(job: SettleSessionJob): Promise<void> {
    const result = await settleSession(this.options.db, job, this.options.platformFeeRate, { log: this.options.logger });
    await this.options.onSettled?.(result);
  }
}
