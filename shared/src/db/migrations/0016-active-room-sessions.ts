/**
 * The RoomService presence check (gateway/src/livekit/room-presence-check.ts) reads every active voice/video session
 * each ROOM_CHECK_MS: a small partial index keeps that read off the sessions table's history.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX sessions_active_rooms_idx ON sessions (id) INCLUDE (user_id) WHERE status = 'active' AND session_type <> 'chat'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_active_rooms_idx').execute();
}
