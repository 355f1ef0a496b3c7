/**
 * A clone's user retention on one UTC day, as an SQL expression computed exactly in Postgres:
 *   (distinct users with a settled session with the clone ending that day who also have a settled session
 *    with it that ended before that day) / (distinct users with a settled session ending that day),
 * rounded to numeric(14,4); 0 when nobody had a session that day.
 */
import { sql, type Expression, type RawBuilder } from 'kysely';

/**
 * `cloneId` is a clone id or any SQL expression of type uuid (a column); `day` is any SQL expression of type date
 * (a parameter cast with ::date, or a column).
 */
export function retentionRateSql(cloneId: string | Expression<unknown>, day: Expression<unknown>): RawBuilder<string> {
  const dayStart = sql`(${day})::timestamp AT TIME ZONE 'UTC'`;
  const nextDayStart = sql`((${day}) + 1)::timestamp AT TIME ZONE 'UTC'`;
  return sql<string>`(
    SELECT coalesce(round(
      (count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM sessions AS earlier
        WHERE earlier.clone_id = ${cloneId}
          AND earlier.user_id = that_day.user_id
          AND earlier.settled_at IS NOT NULL
          AND earlier.end_time < ${dayStart}
      )))::numeric / nullif(count(*), 0), 4), 0)::numeric(14,4)
    FROM (
      SELECT DISTINCT s.user_id FROM sessions AS s
      WHERE s.clone_id = ${cloneId}
        AND s.settled_at IS NOT NULL
        AND s.end_time >= ${dayStart}
        AND s.end_time < ${nextDayStart}
    ) AS that_day
  )`;
}
