/**
 * The double entry of an adjustment, as a pure function. A refund (amount > 0) credits the user and takes the
 * creator's earning and the platform's fee on that amount back; an extra charge (amount < 0) does the opposite.
 * The split is splitTotal(|amount|), as a settlement splits its total, so the three amounts sum to exactly zero.
 */
import type { LedgerAccountKind } from '#shared/db/schema.ts';
import { formatMoney, type Ratio, type Units } from '#shared/money/money.ts';
import { splitTotal } from '#shared/money/pricing.ts';

export interface AdjustmentParties {
  readonly adjustmentId: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly creatorId: string;
}

export interface AdjustmentEntryDraft {
  readonly session_id: string;
  readonly adjustment_id: string;
  readonly kind: 'adjustment';
  readonly account_kind: LedgerAccountKind;
  readonly account_id: string | null;
  /** Signed decimal string with four places. */
  readonly amount: string;
}

export interface AdjustmentSplit {
  readonly user: Units;
  readonly creator: Units;
  readonly platform: Units;
}

/** The signed amount each account moves by; user + creator + platform = 0. */
export function adjustmentSplit(amount: Units, platformFeeRate: Ratio): AdjustmentSplit {
  const sign = amount < 0n ? -1n : 1n;
  const split = splitTotal(amount * sign, platformFeeRate);
  return { user: amount, creator: -sign * split.creatorEarning, platform: -sign * split.platformFee };
}

export function adjustmentLedgerEntries(parties: AdjustmentParties, split: AdjustmentSplit): AdjustmentEntryDraft[] {
  const entry = (account_kind: LedgerAccountKind, account_id: string | null, amount: Units): AdjustmentEntryDraft => ({
    session_id: parties.sessionId,
    adjustment_id: parties.adjustmentId,
    kind: 'adjustment',
    account_kind,
    account_id,
    amount: formatMoney(amount),
  });
  return [
    entry('user', parties.userId, split.user),
    entry('creator', parties.creatorId, split.creator),
    entry('platform', null, split.platform),
  ];
}
