/**
 * Settled sessions, newest first by (end_time desc, id desc), a page at a time: keyset pagination over the
 * partial index sessions_settled_at_idx, so page 1000 costs what page 1 does and rows settled meanwhile neither
 * repeat nor go missing.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, SessionType } from '#shared/db/schema.ts';
import { decodeSessionCursor, encodeSessionCursor } from './session-cursor.ts';
import { selectSessionSummaries, toSessionSummary, type SessionSummary } from './session-summary.ts';
import type { TimeRange } from './time-range.ts';

export interface SessionFilter extends TimeRange {
  userId?: string | undefined;
  cloneId?: string | undefined;
  creatorId?: string | undefined;
  type?: SessionType | undefined;
  endReason?: string | undefined;
  /** From the previous page's `nextCursor`. */
  cursor?: string | undefined;
  /** Rows per page, 1..500. */
  limit: number;
}

export interface SessionPage {
  sessions: SessionSummary[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export async function listSessions(db: Kysely<Database>, filter: SessionFilter): Promise<SessionPage> {
  const after = filter.cursor === undefined ? undefined : decodeSessionCursor(filter.cursor);
  let query = selectSessionSummaries(db)
    .where('s.settled_at', 'is not', null)
    .where('s.end_time', 'is not', null);
  if (filter.from) query = query.where('s.end_time', '>=', filter.from);
  if (filter.to) query = query.where('s.end_time', '<', filter.to);
  if (filter.userId) query = query.where('s.user_id', '=', filter.userId);
  if (filter.cloneId) query = query.where('s.clone_id', '=', filter.cloneId);
  if (filter.creatorId) query = query.where('c.creator_id', '=', filter.creatorId);
  if (filter.type) query = query.where('s.session_type', '=', filter.type);
  if (filter.endReason) query = query.where('s.end_reason', '=', filter.endReason);
  if (after) {
    query = query.where(sql<boolean>`(s.end_time, s.id) < (${after.endTime}::timestamptz, ${after.id}::uuid)`);
  }
  // one row more than the page tells whether there is a next page
  const rows = await query.orderBy('s.end_time', 'desc').orderBy('s.id', 'desc').limit(filter.limit + 1).execute();
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    sessions: page.map(toSessionSummary),
    nextCursor: rows.length > filter.limit && last?.end_key ? encodeSessionCursor({ endTime: last.end_key, id: last.id }) : null,
  };
}
