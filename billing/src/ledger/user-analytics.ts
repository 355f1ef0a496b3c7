/** The users' daily analytics (user_analytics, one row per user and day), newest first. */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { moneyText } from './money-text.ts';
import type { DateRange } from './time-range.ts';

export interface UserAnalyticsFilter extends DateRange {
  userId?: string | undefined;
}

export interface UserAnalyticsRow {
  date: string;
  userId: string;
  sessionsCount: number;
  messagesSent: number;
  totalDurationMinutes: number;
  totalSpent: string;
  documentsUploaded: number;
}

export async function userAnalytics(db: Kysely<Database>, filter: UserAnalyticsFilter): Promise<UserAnalyticsRow[]> {
  let query = db
    .selectFrom('user_analytics')
    .select(['date', 'user_id', 'sessions_count', 'messages_sent', 'total_duration_minutes', 'total_spent', 'documents_uploaded']);
  if (filter.from) query = query.where('date', '>=', filter.from);
  if (filter.to) query = query.where('date', '<', filter.to);
  if (filter.userId) query = query.where('user_id', '=', filter.userId);
  const rows = await query.orderBy('date', 'desc').orderBy('user_id').execute();
  return rows.map((row) => ({
    date: row.date,
    userId: row.user_id,
    sessionsCount: row.sessions_count,
    messagesSent: row.messages_sent,
    totalDurationMinutes: row.total_duration_minutes,
    totalSpent: moneyText(row.total_spent),
    documentsUploaded: row.documents_uploaded,
  }));
}
