/**
 * A user's credits as the ledger explains them: the sum of their user-account entries in `ledger_entries` (sessions,
 * adjustments) and `movement_entries` (openings, purchases, refunds, grants). Tests compare it with the balance.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';

export async function ledgerCreditsOf(db: Kysely<Database>, userId: string): Promise<string> {
  const { rows } = await sql<{ credits: string }>`
    SELECT (coalesce((SELECT sum(amount) FROM ledger_entries WHERE account_kind = 'user' AND account_id = ${userId}), 0)
          + coalesce((SELECT sum(amount) FROM movement_entries WHERE account_kind = 'user' AND account_id = ${userId}), 0))::numeric(14,4)::text AS credits
  `.execute(db);
  return rows[0]!.credits;
}
