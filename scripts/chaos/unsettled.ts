/**
 * Names the sessions a chaos run left open or unsettled, and why, from what Postgres and the live state in Redis
 * still hold of each: so a run that fails on them says which and where they stopped, and the seed can be replayed.
 */
import type { Kysely } from 'kysely';
import type { RedisClient } from '#shared/live-state/redis-client.ts';
import type { Database } from '#shared/db/schema.ts';
import { dueKey, userBucket, userKeys } from '#shared/live-state/keys.ts';

export interface UnsettledSession {
  sessionId: string;
  userId: string | null;
  /** Postgres's row (status, settled or not), or null when the start never reached it. */
  row: string;
  /** The live state's view, and what that means. */
  reason: string;
}

export async function explainUnsettled(db: Kysely<Database>, redis: RedisClient, prefix: string, sessionIds: string[], limit = 10): Promise<UnsettledSession[]> {
  const explained: UnsettledSession[] = [];
  for (const sessionId of sessionIds.slice(0, limit)) {
    const row = await db.selectFrom('sessions').select(['user_id', 'status', 'settled_at', 'end_reason']).where('id', '=', sessionId).executeTakeFirst();
    const userId = row?.user_id ?? null;
    const rowText = row ? `postgres ${row.status}${row.end_reason ? `/${row.end_reason}` : ''}, ${row.settled_at ? 'settled' : 'unsettled'}` : 'no row in postgres';
    if (!userId) {
      explained.push({ sessionId, userId, row: rowText, reason: 'an acknowledged start whose facts never reached Postgres' });
      continue;
    }
    const keys = userKeys(prefix, userId);
    const [live, isOpen, due, outboxLength, unsettled] = await Promise.all([
      redis.hgetall(keys.session(sessionId)),
      redis.sismember(keys.open, sessionId),
      redis.zscore(dueKey(prefix, userBucket(userId)), userId),
      redis.xlen(keys.outbox),
      redis.hget(keys.unsettled, sessionId),
    ]);
    let reason: string;
    if (Object.keys(live).length === 0) {
      reason = 'the live state is gone (expired or lost with Redis): the reconciler settles it at its last checkpoint';
    } else if (live.status !== 'ended') {
      reason = `still ${live.status} in the live state (${isOpen ? 'in' : 'NOT in'} the open set), ` +
        (due === null ? 'nothing scheduled for the user (no due entry)' : `the user due at ${new Date(Number(due)).toISOString()}`);
    } else {
      reason = `ended in the live state (${live.reason ?? '?'} at ${new Date(Number(live.endedAt)).toISOString()}), ` +
        (outboxLength > 0 ? `${outboxLength} facts still in the user's outbox` : 'its settle fact relayed but not applied') +
        (unsettled === null ? '' : `, unsettled total ${unsettled} still counted against the user`);
    }
    explained.push({ sessionId, userId, row: rowText, reason });
  }
  return explained;
}
