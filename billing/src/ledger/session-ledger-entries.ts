/**
 * The double entry of one settled session, as a pure function: the user is debited the charge, the
 * creator credited the earning and the platform the fee. Because earning = charge − fee (splitTotal),
 * the three amounts always sum to exactly zero.
 */
import type { LedgerAccountKind, LedgerEntryKind } from '#shared/db/schema.ts';
import { formatMoney, type Units } from '#shared/money/money.ts';
import type { Split } from '#shared/money/pricing.ts';

export interface LedgerEntryDraft {
  readonly session_id: string;
  readonly account_kind: LedgerAccountKind;
  readonly account_id: string | null;
  /** Signed decimal string with four places. */
  readonly amount: string;
  readonly kind: LedgerEntryKind;
}

export interface SessionParties {
  readonly sessionId: string;
  readonly userId: string;
  readonly creatorId: string;
}

export function sessionLedgerEntries(parties: SessionParties, split: Split): LedgerEntryDraft[] {
  const entry = (
    kind: LedgerEntryKind,
    account_kind: LedgerAccountKind,
    account_id: string | null,
    amount: Units,
  ): LedgerEntryDraft => ({ session_id: parties.sessionId, account_kind, account_id, amount: formatMoney(amount), kind });
  return [
    entry('session_charge', 'user', parties.userId, -split.total),
    entry('creator_earning', 'creator', parties.creatorId, split.creatorEarning),
    entry('platform_fee', 'platform', null, split.platformFee),
  ];
}
