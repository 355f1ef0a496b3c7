/**
 * Brings the live state's idea of a user's balance up to Postgres: credits_remaining at credits_version, and
 * which unsettled ended sessions that snapshot already includes. Runs before a session starts and after every
 * settlement (from the billing worker), so a settled total is never subtracted twice nor forgotten.
 */
import type { Kysely } from 'kysely';
import type { Database, SubscriptionTier } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { parseMoney } from '#shared/money/money.ts';
import type { SessionStore } from './session-store.ts';

/** What the refresh read beside the balance: the user's tier (a session's start prices by it). */
export interface BalanceRefresh {
  tier: SubscriptionTier;
}

/** Rounds of "read unsettled ids, read Postgres" before giving up on ids that keep appearing. */
const MAX_ROUNDS = 3;

export async function refreshBalance(db: Kysely<Database>, store: SessionStore, userId: string): Promise<BalanceRefresh> {
  let tier: SubscriptionTier = 'free';
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const candidates = await store.unsettledIds(userId);
    // Which candidates the balance already includes is decided by version, so the two reads need no transaction.
    const user = await db
      .selectFrom('user_profiles')
      .select(['credits_remaining', 'credits_version', 'subscription_tier'])
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!user) throw new AppError('unauthorized', 'unknown user');
    tier = user.subscription_tier;
    const settled =
      candidates.length === 0
        ? []
        : await db
            .selectFrom('sessions')
            .select('id')
            .where('id', 'in', candidates)
            .where('settled_credits_version', 'is not', null)
            .where('settled_credits_version', '<=', user.credits_version)
            .execute();
    await store.applyBalance(userId, parseMoney(user.credits_remaining), user.credits_version, settled.map((s) => s.id));
    // A session that ended between the two reads may already be in the snapshot: look once more.
    const now = await store.unsettledIds(userId);
    if (now.every((id) => candidates.includes(id))) return { tier };
  }
  return { tier };
}
