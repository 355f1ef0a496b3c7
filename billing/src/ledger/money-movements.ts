/**
 * Money that entered or left other than through a session, for billing staff: openings, purchases, refunds,
 * disputes, grants, payouts and their reversals, newest first, each with its entries (which sum to zero).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import type { TimeRange } from './time-range.ts';
import { moneyText } from './money-text.ts';

export interface MovementView {
  id: string;
  kind: string;
  userId: string;
  reference: string;
  credits: string;
  amountMinor: string;
  currency: string | null;
  createdAt: string;
  entries: Array<{ accountKind: string; accountId: string | null; kind: string; amount: string }>;
}

/** Most movements answered at once (newest first). */
const LIMIT = 500;

export async function listMoneyMovements(db: Kysely<Database>, range: TimeRange, filter: { userId?: string | undefined; kind?: string | undefined } = {}): Promise<MovementView[]> {
  const { rows } = await sql<{
    id: string;
    kind: string;
    user_id: string;
    reference: string;
    credits: string;
    amount_minor: string;
    currency: string | null;
    created_at: Date;
    entries: Array<{ account_kind: string; account_id: string | null; kind: string; amount: string }>;
  }>`
    SELECT m.id, m.kind, m.user_id, m.reference, m.credits::text, m.amount_minor::text, m.currency, m.created_at,
           (SELECT json_agg(json_build_object('account_kind', e.account_kind, 'account_id', e.account_id, 'kind', e.kind, 'amount', e.amount::text)
                            ORDER BY e.account_kind, e.kind)
              FROM movement_entries e WHERE e.movement_id = m.id) AS entries
    FROM money_movements m
    WHERE true
      ${range.from ? sql`AND m.created_at >= ${range.from}` : sql``}
      ${range.to ? sql`AND m.created_at < ${range.to}` : sql``}
      ${filter.userId ? sql`AND m.user_id = ${filter.userId}` : sql``}
      ${filter.kind ? sql`AND m.kind = ${filter.kind}` : sql``}
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT ${LIMIT}
  `.execute(db);
  return rows.map((row) => ({
    id: row.id,
    kind: row.kind,
    userId: row.user_id,
    reference: row.reference,
    credits: moneyText(row.credits),
    amountMinor: row.amount_minor,
    currency: row.currency,
    createdAt: new Date(row.created_at).toISOString(),
    entries: (row.entries ?? []).map((e) => ({ accountKind: e.account_kind, accountId: e.account_id, kind: e.kind, amount: moneyText(e.amount) })),
  }));
}
