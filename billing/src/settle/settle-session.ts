/**
 * Settles one ended session into Postgres, exactly once, in one transaction: the user is charged (never more than
 * their credits), the charge is split into creator earning and platform fee, three ledger entries summing to zero are
 * written, and the balances, clone totals and daily analytics move with them. Running it again for the same session
 * changes nothing and reports the first settlement. It is `settleSessions` (settle-sessions.ts) with one job,
 * waiting for any lock it needs; the billing worker settles the jobs it runs at once as one batch.
 */
import type { Kysely } from 'kysely';
import type { SettleSessionJob, SettlementResult } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import type { Ratio } from '#shared/money/money.ts';
import { settleSessions, type SettleOptions } from './settle-sessions.ts';


export async function settleSession(
  db: Kysely<Database>,
  job: SettleSessionJob,
  platformFeeRate: Ratio,
  options: Omit<SettleOptions, 'skipLockedUsers'> = {},
): Promise<SettlementResult> {
  const [outcome] = await settleSessions(db, [job], platformFeeRate, { ...options, skipLockedUsers: false });
  if (!outcome) throw new Error('settleSessions returned no outcome');
  if ('error' in outcome) throw outcome.error;
  if ('deferred' in outcome) throw new Error(`settlement of session ${job.session.sessionId} was deferred`);
  return outcome.result;
}
