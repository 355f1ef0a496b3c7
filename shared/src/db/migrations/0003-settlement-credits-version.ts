/**
 * sessions.settled_credits_version: the user's credits_version right after the settlement's debit. A balance
 * snapshot at version v already includes every session settled at a version <= v, which is how the live state
 * knows which unsettled totals a fresh snapshot makes redundant (see shared/src/live-state/balance-refresh.ts).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('settled_credits_version', 'bigint').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('settled_credits_version').execute();
}
