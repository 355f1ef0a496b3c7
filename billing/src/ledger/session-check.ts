/**
 * The recomputation check of a settled session, as pure functions: the active intervals from its audit trail
 * (started/resumed → the next paused/ended), their time cost at the session's rate plus the AI reply costs,
 * compared with what the settlement charged; and whether its ledger transactions balance.
 */
import type { SessionEventKind } from '#shared/db/schema.ts';
import { formatMoney, type Units } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';

export interface AuditEvent {
  version: number;
  kind: SessionEventKind;
  at: Date;
}

export interface ActiveInterval {
  start: Date;
  /** null while the session is still active. */
  end: Date | null;
  /** end − start; 0 while open. */
  activeMs: number;
}

/** Active periods, events taken in version order; an open period has no end. */
export function activeIntervals(events: readonly AuditEvent[]): ActiveInterval[] {
  const intervals: ActiveInterval[] = [];
  let start: Date | null = null;
  for (const event of [...events].sort((a, b) => a.version - b.version)) {
    if (event.kind === 'started' || event.kind === 'resumed') {
      start ??= event.at;
    } else if (start) {
      intervals.push({ start, end: event.at, activeMs: Math.max(0, event.at.getTime() - start.getTime()) });
      start = null;
    }
  }
  if (start) intervals.push({ start, end: null, activeMs: 0 });
  return intervals;
}

export interface CheckInput {
  settled: boolean;
  endReason: string | null;
  ratePerMinute: Units;
  /** sessions.active_ms: what the live state billed. */
  billedActiveMs: bigint;
  intervals: readonly ActiveInterval[];
  /** Σ cost_increment of the session's AI messages. */
  aiCost: Units;
  /** −(the session_charge amount); 0 when not settled. */
  charged: Units;
  /** Sum and count of the settlement's entries (adjustment_id null). */
  settlementSum: Units;
  settlementEntries: number;
  /** The sum of each adjustment's entries. */
  adjustmentSums: readonly Units[];
  /** Every ledger entry of the session. */
  ledgerSum: Units;
}

export interface SessionCheck {
  activeMsFromIntervals: number;
  timeCost: string;
  aiCost: string;
  recomputedTotal: string;
  charged: string;
  /** charged − recomputedTotal. */
  difference: string;
  ledgerSum: string;
  balanced: boolean;
  consistent: boolean;
  note: string;
}

export function sessionCheck(input: CheckInput): SessionCheck {
  const activeMs = input.intervals.reduce((sum, interval) => sum + BigInt(interval.activeMs), 0n);
  const recomputedTime = timeCost(input.ratePerMinute, activeMs);
  const recomputed = recomputedTime + input.aiCost;
  // what the live state asked for: less charged than that means the settlement capped it at the user's credits
  const requested = timeCost(input.ratePerMinute, input.billedActiveMs) + input.aiCost;
  const settlementBalanced = input.settled
    ? input.settlementEntries === 3 && input.settlementSum === 0n
    : input.settlementEntries === 0;
  const balanced = settlementBalanced && input.adjustmentSums.every((sum) => sum === 0n);

  let consistent: boolean;
  let note: string;
  if (!input.settled) {
    consistent = false;
    note = 'not settled yet: nothing has been charged';
  } else if (input.charged === recomputed) {
    consistent = true;
    note = 'the charge equals the recomputation from the audit trail';
  } else if (input.charged < recomputed && input.endReason === 'credits_exhausted') {
    consistent = true;
    note = 'credits ran out: the charge is capped at the credits the user had';
  } else if (input.charged < recomputed && input.charged < requested) {
    consistent = true;
    note = `the charge was capped at the user's credits when it was settled (${formatMoney(requested)} was due)`;
  } else {
    consistent = false;
    note = `the charge differs from the recomputation from the audit trail by ${formatMoney(input.charged - recomputed)}`;
  }
  if (input.endReason === 'state_lost') {
    note += '; the live state was lost and the reconciler settled the session at its last checkpoint, so events after it may be missing';
  }
  if (!balanced) note += '; the ledger entries do not balance';
  return {
    activeMsFromIntervals: Number(activeMs),
    timeCost: formatMoney(recomputedTime),
    aiCost: formatMoney(input.aiCost),
    recomputedTotal: formatMoney(recomputed),
    charged: formatMoney(input.charged),
    difference: formatMoney(input.charged - recomputed),
    ledgerSum: formatMoney(input.ledgerSum),
    balanced,
    consistent,
    note,
  };
}
