/**
 * `SessionArchive`: what Postgres holds of a session once its live state is gone (expired ENDED_STATE_TTL_MS after
 * the end, or never in the caller's live state): the session and its messages in the same wire shapes the live
 * state gives (`toWireMessage` maps both, citations included), and why an action on it is refused.
 */
import type { Kysely } from 'kysely';
import type { Citation, WireMessage, WireSession } from '#shared/contract/socket-events.ts';
import type { Database, MessageRow, SessionRow } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { toWireMessage, type StoredMessage } from '#shared/live-state/session-store.ts';

export class SessionArchive {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * The recorded session of `userId`: not_found when there is none, forbidden when it is someone else's; with
   * `acting`, invalid_state (nothing can be done to a session that is no longer live).
   */
  async session(userId: string, sessionId: string, acting: boolean): Promise<WireSession> {
    const row = await this.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirst();
    if (!row) throw new AppError('not_found', 'no such session', { sessionId });
    if (row.user_id !== userId) throw new AppError('forbidden', 'not your session', { sessionId });
    if (acting) throw new AppError('invalid_state', `not allowed while the session is ${row.status}`, { sessionId, status: row.status });
    return wireSessionOfRow(row);
  }

  /** The session's stored messages, oldest first (a user message before the reply of the same instant). */
  async messages(sessionId: string): Promise<WireMessage[]> {
    const rows = await this.db
      .selectFrom('messages')
      .selectAll()
      .where('session_id', '=', sessionId)
      .orderBy('created_at')
      .orderBy('sender_type', 'desc')
      .execute();
    return rows.map((row) => toWireMessage(storedMessageOfRow(row)));
  }
}

function wireSessionOfRow(row: SessionRow): WireSession {
  return {
    id: row.id,
    userId: row.user_id,
    cloneId: row.clone_id,
    type: row.session_type,
    status: row.status,
    startTime: new Date(row.start_time).toISOString(),
    endTime: row.end_time ? row.end_time.toISOString() : null,
    activeSeconds: Math.floor(Number(row.active_ms) / 1000),
    ratePerMinute: formatMoney(parseMoney(row.rate_per_minute)),
    cost: formatMoney(parseMoney(row.total_cost)),
    messageCount: row.message_count,
  };
}

function storedMessageOfRow(row: MessageRow): StoredMessage {
  return {
    id: row.id,
    sessionId: row.session_id,
    senderType: row.sender_type,
    content: row.content,
    tokensUsed: row.tokens_used,
    costIncrement: parseMoney(row.cost_increment),
    createdAt: new Date(row.created_at).getTime(),
    clientMessageId: row.client_message_id,
    citations: Array.isArray(row.citations) ? (row.citations as Citation[]) : [],
  };
}
