/**
 * A session as billing staff see it in lists and in the detail: who, which clone and creator, when, how long,
 * at what rate, and what it cost. `selectSessionSummaries` is the one query both build on.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, SessionStatus, SessionType } from '#shared/db/schema.ts';
import { moneyText } from './money-text.ts';

export interface SessionSummary {
  id: string;
  userId: string;
  userEmail: string;
  cloneId: string;
  cloneName: string;
  creatorId: string;
  type: SessionType;
  status: SessionStatus;
  startTime: string;
  endTime: string | null;
  /** Active (billed) milliseconds. */
  activeMs: number;
  durationMinutes: number;
  ratePerMinute: string;
  /** What the settlement charged (before adjustments). */
  totalCost: string;
  messageCount: number;
  endReason: string | null;
  settledAt: string | null;
  userRating: number | null;
}

/** sessions joined with their user and clone, selecting what `toSessionSummary` reads (plus the keyset key). */
export function selectSessionSummaries(db: Kysely<Database>) {
  return db
    .selectFrom('sessions as s')
    .innerJoin('user_profiles as u', 'u.id', 's.user_id')
    .innerJoin('clones as c', 'c.id', 's.clone_id')
    .select([
      's.id',
      's.user_id',
      'u.email',
      's.clone_id',
      'c.name as clone_name',
      'c.creator_id',
      's.session_type',
      's.status',
      's.start_time',
      's.end_time',
      's.active_ms',
      's.duration_minutes',
      's.rate_per_minute',
      's.total_cost',
      's.message_count',
      's.end_reason',
      's.settled_at',
      's.user_rating',
      // end_time to the microsecond (a JS Date keeps milliseconds): the exact keyset position
      sql<string | null>`to_char(s.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('end_key'),
    ]);
}

export type SessionSummaryRow = Awaited<ReturnType<ReturnType<typeof selectSessionSummaries>['executeTakeFirstOrThrow']>>;

export function toSessionSummary(row: SessionSummaryRow): SessionSummary {
  return {
    id: row.id,
    userId: row.user_id,
    userEmail: row.email,
    cloneId: row.clone_id,
    cloneName: row.clone_name,
    creatorId: row.creator_id,
    type: row.session_type,
    status: row.status,
    startTime: row.start_time.toISOString(),
    endTime: row.end_time?.toISOString() ?? null,
    activeMs: Number(row.active_ms),
    durationMinutes: row.duration_minutes,
    ratePerMinute: moneyText(row.rate_per_minute),
    totalCost: moneyText(row.total_cost),
    messageCount: row.message_count,
    endReason: row.end_reason,
    settledAt: row.settled_at?.toISOString() ?? null,
    userRating: row.user_rating,
  };
}
