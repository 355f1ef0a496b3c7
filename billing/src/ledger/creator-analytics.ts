/** The creators' daily analytics (creator_analytics, one row per creator, clone and day), newest first. */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { moneyText } from './money-text.ts';
import type { DateRange } from './time-range.ts';

export interface CreatorAnalyticsFilter extends DateRange {
  creatorId?: string | undefined;
  cloneId?: string | undefined;
}

export interface CreatorAnalyticsRow {
  date: string;
  creatorId: string;
  cloneId: string;
  cloneName: string;
  totalEarnings: string;
  sessionsCount: number;
  /** 0.00..5.00, two places. */
  averageRating: string;
  /** 0..1, four places. */
  userRetentionRate: string;
}

export async function creatorAnalytics(
  db: Kysely<Database>,
  filter: CreatorAnalyticsFilter,
): Promise<CreatorAnalyticsRow[]> {
  let query = db
    .selectFrom('creator_analytics as a')
    .innerJoin('clones as c', 'c.id', 'a.clone_id')
    .select([
      'a.date',
      'a.creator_id',
      'a.clone_id',
      'c.name',
      'a.total_earnings',
      'a.sessions_count',
      'a.average_rating',
      'a.user_retention_rate',
    ]);
  if (filter.from) query = query.where('a.date', '>=', filter.from);
  if (filter.to) query = query.where('a.date', '<', filter.to);
  if (filter.creatorId) query = query.where('a.creator_id', '=', filter.creatorId);
  if (filter.cloneId) query = query.where('a.clone_id', '=', filter.cloneId);
  const rows = await query.orderBy('a.date', 'desc').orderBy('a.creator_id').orderBy('a.clone_id').execute();
  return rows.map((row) => ({
    date: row.date,
    creatorId: row.creator_id,
    cloneId: row.clone_id,
    cloneName: row.name,
    totalEarnings: moneyText(row.total_earnings),
    sessionsCount: row.sessions_count,
    averageRating: row.average_rating,
    userRetentionRate: moneyText(row.user_retention_rate),
  }));
}
