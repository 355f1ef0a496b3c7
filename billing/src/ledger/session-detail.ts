/**
 * Everything billing staff need to audit one session: its summary, audit trail (events and the active intervals
 * they give), messages, ledger rows, adjustments and the recomputation check. Unknown id: `not_found`.
 */
import type { Kysely } from 'kysely';
import type { Database, SenderType, SessionEventKind } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { parseMoney } from '#shared/money/money.ts';
import { ledgerEntryOrder, toLedgerEntryView, type LedgerEntryView } from './ledger-entry-view.ts';
import { moneyText } from './money-text.ts';
import { activeIntervals, sessionCheck, type SessionCheck } from './session-check.ts';
import { selectSessionSummaries, toSessionSummary, type SessionSummary } from './session-summary.ts';

export interface SessionDetail {
  session: SessionSummary;
  events: { version: number; kind: SessionEventKind; at: string; activeMs: number; reason: string | null }[];
  intervals: { start: string; end: string | null; activeMs: number }[];
  messages: {
    id: string;
    senderType: SenderType;
    content: string;
    tokensUsed: number;
    costIncrement: string;
    createdAt: string;
  }[];
  ledger: LedgerEntryView[];
  adjustments: { id: string; amount: string; reason: string; authorId: string; createdAt: string }[];
  check: SessionCheck;
}

export async function sessionDetail(db: Kysely<Database>, sessionId: string): Promise<SessionDetail> {
  // one snapshot: an adjustment committing meanwhile shows in all of the lists or in none
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => readSessionDetail(trx, sessionId));
}

async function readSessionDetail(db: Kysely<Database>, sessionId: string): Promise<SessionDetail> {
  const row = await selectSessionSummaries(db).where('s.id', '=', sessionId).executeTakeFirst();
  if (!row) throw new AppError('not_found', 'no such session', { sessionId });

  const [events, messages, ledger, adjustments] = await Promise.all([
    db
      .selectFrom('session_events')
      .select(['version', 'kind', 'at', 'active_ms', 'reason'])
      .where('session_id', '=', sessionId)
      .orderBy('version')
      .execute(),
    db
      .selectFrom('messages')
      .select(['id', 'sender_type', 'content', 'tokens_used', 'cost_increment', 'created_at'])
      .where('session_id', '=', sessionId)
      .orderBy('created_at')
      .orderBy('id')
      .execute(),
    db
      .selectFrom('ledger_entries as l')
      .select(['l.id', 'l.kind', 'l.account_kind', 'l.account_id', 'l.amount', 'l.adjustment_id', 'l.created_at'])
      .where('l.session_id', '=', sessionId)
      .orderBy(ledgerEntryOrder('l'))
      .execute(),
    db
      .selectFrom('ledger_adjustments')
      .select(['id', 'amount', 'reason', 'author_id', 'created_at'])
      .where('session_id', '=', sessionId)
      .orderBy('created_at')
      .orderBy('id')
      .execute(),
  ]);

  const intervals = activeIntervals(events);
  const settlement = ledger.filter((entry) => entry.adjustment_id === null);
  const sumOf = (entries: readonly { amount: string }[]) => entries.reduce((sum, e) => sum + parseMoney(e.amount), 0n);
  const charge = settlement.find((entry) => entry.kind === 'session_charge');
  const check = sessionCheck({
    settled: row.settled_at !== null,
    endReason: row.end_reason,
    ratePerMinute: parseMoney(row.rate_per_minute),
    billedActiveMs: BigInt(row.active_ms),
    intervals,
    aiCost: sumOf(messages.filter((m) => m.sender_type === 'ai').map((m) => ({ amount: m.cost_increment }))),
    charged: charge ? -parseMoney(charge.amount) : 0n,
    settlementSum: sumOf(settlement),
    settlementEntries: settlement.length,
    adjustmentSums: adjustments.map((a) => sumOf(ledger.filter((entry) => entry.adjustment_id === a.id))),
    ledgerSum: sumOf(ledger),
  });

  return {
    session: toSessionSummary(row),
    events: events.map((e) => ({
      version: e.version,
      kind: e.kind,
      at: e.at.toISOString(),
      activeMs: Number(e.active_ms),
      reason: e.reason,
    })),
    intervals: intervals.map((i) => ({ start: i.start.toISOString(), end: i.end?.toISOString() ?? null, activeMs: i.activeMs })),
    messages: messages.map((m) => ({
      id: m.id,
      senderType: m.sender_type,
      content: m.content,
      tokensUsed: m.tokens_used,
      costIncrement: moneyText(m.cost_increment),
      createdAt: m.created_at.toISOString(),
    })),
    ledger: ledger.map(toLedgerEntryView),
    adjustments: adjustments.map((a) => ({
      id: a.id,
      amount: moneyText(a.amount),
      reason: a.reason,
      authorId: a.author_id,
      createdAt: a.created_at.toISOString(),
    })),
    check,
  };
}
