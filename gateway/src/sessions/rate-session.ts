/**
 * `rateSession`: the user's rating (1–5, with optional feedback) of their ended session, once, recorded on the
 * session and folded into the clone's average in one transaction (recomputed from every rating, in Postgres, so
 * rounding never accumulates).
 */
import { sql, type Kysely } from 'kysely';
import type { ClientPayload } from '#shared/contract/socket-events.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import type { SessionStore } from '#shared/live-state/session-store.ts';

export async function rateSession(db: Kysely<Database>, store: SessionStore, userId: string, payload: ClientPayload<'session:rate'>): Promise<void> {
  const row = await db
    .selectFrom('sessions')
    .select(['user_id', 'status', 'clone_id', 'user_rating'])
    .where('id', '=', payload.sessionId)
    .executeTakeFirst();
  if (!row) {
    const live = await store.peek(userId, payload.sessionId);
    if (live) throw new AppError('invalid_state', 'the session is not recorded yet; retry shortly', { sessionId: payload.sessionId });
    throw new AppError('not_found', 'no such session', { sessionId: payload.sessionId });
  }
  if (row.user_id !== userId) throw new AppError('forbidden', 'not your session', { sessionId: payload.sessionId });
  const live = await store.peek(userId, payload.sessionId);
  const ended = row.status === 'ended' || live?.status === 'ended';
  if (!ended) throw new AppError('invalid_state', 'only an ended session can be rated', { sessionId: payload.sessionId });
  const rated = await db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('sessions')
      .set({ user_rating: payload.rating, user_feedback: payload.feedback ?? null, updated_at: new Date() })
      .where('id', '=', payload.sessionId)
      .where('user_rating', 'is', null)
      .executeTakeFirst();
    if (updated.numUpdatedRows === 0n) return false;
    await trx
      .updateTable('clones')
      .set({
        // recomputed from every rating (numeric, in Postgres), so rounding never accumulates
        average_rating: sql<string>`(select round(avg(user_rating), 2) from sessions where clone_id = ${row.clone_id} and user_rating is not null)`,
        total_ratings: sql<number>`(select count(*) from sessions where clone_id = ${row.clone_id} and user_rating is not null)`,
        updated_at: new Date(),
      })
      .where('id', '=', row.clone_id)
      .execute();
    return true;
  });
  if (!rated) throw new AppError('invalid_state', 'this session was already rated', { sessionId: payload.sessionId });
}
