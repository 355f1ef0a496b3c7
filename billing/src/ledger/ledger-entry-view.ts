/**
 * A ledger row as the API shows it, and the one order of a session's rows: by time, the settlement before its
 * adjustments, each transaction as user, creator, platform.
 */
import { sql, type RawBuilder } from 'kysely';
import type { LedgerAccountKind, LedgerEntryKind } from '#shared/db/schema.ts';
import { moneyText } from './money-text.ts';

export interface LedgerEntryView {
  id: string;
  kind: LedgerEntryKind;
  accountKind: LedgerAccountKind;
  accountId: string | null;
  /** Signed decimal, four places: negative debits the account. */
  amount: string;
  adjustmentId: string | null;
  createdAt: string;
}

export interface LedgerEntryRow {
  id: string;
  kind: LedgerEntryKind;
  account_kind: LedgerAccountKind;
  account_id: string | null;
  amount: string;
  adjustment_id: string | null;
  created_at: Date;
}

export function toLedgerEntryView(row: LedgerEntryRow): LedgerEntryView {
  return {
    id: row.id,
    kind: row.kind,
    accountKind: row.account_kind,
    accountId: row.account_id,
    amount: moneyText(row.amount),
    adjustmentId: row.adjustment_id,
    createdAt: row.created_at.toISOString(),
  };
}

/** ORDER BY terms for the ledger rows of a session, `alias` being the ledger_entries alias. */
export function ledgerEntryOrder(alias: string): RawBuilder<unknown> {
  const column = (name: string) => sql.ref(`${alias}.${name}`);
  return sql`${column('created_at')}, ${column('adjustment_id')} NULLS FIRST,
    CASE ${column('account_kind')} WHEN 'user' THEN 0 WHEN 'creator' THEN 1 ELSE 2 END`;
}
