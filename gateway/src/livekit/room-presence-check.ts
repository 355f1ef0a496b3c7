/**
 * Presence checked against the room, not only told by webhooks (LiveKit delivers a webhook a few times at most, and a
 * gateway can be down): every ROOM_CHECK_MS, and when a gateway starts, one gateway (a lease in Redis) asks LiveKit's
 * RoomService who is in the room of every active voice/video session.
 * - the user and the clone's agent are there: the check's instant (Redis time) is the latest proved presence (of a
 *   conversation);
 * - the agent is not (it vanished without a webhook): it leaves at the latest proved instant, which pauses the meter;
 * - the user is not: each of their participants leaves at the latest instant that can be proved — the last check that
 *   saw them, or the session's last change (room-event.lua takes the later) — so the charge stops there;
 * - the room does not exist: the session ends at that same instant.
 * The events carry ids of their own (`check-left:<participant sid>`, `check-finished:<session>`), and a participant
 * leaves once: a webhook arriving after the check changes nothing twice, nor does the check after a webhook.
 * A RoomService that does not answer proves nothing: the session is left as it is, and the failure logged.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '#shared/db/schema.ts';
import type { RedisClient } from '#shared/live-state/redis-client.ts';
import { roomCheckLeaseKey } from '#shared/live-state/keys.ts';
import type { SessionStore } from '#shared/live-state/session-store.ts';
import type { RoomWebhook } from './room-webhooks.ts';
import { agentIdentity, type VoiceRooms } from './voice-rooms.ts';

export interface RoomPresenceCheckOptions {
  db: Kysely<Database>;
  redis: RedisClient;
  prefix: string;
  store: SessionStore;
  rooms: VoiceRooms;
  /** Applies a room event as a webhook would (SessionService.roomEvent with `proved`). */
  apply(webhook: RoomWebhook): Promise<void>;
  intervalMs: number;
  logger: Logger;
}

export interface RoomCheckReport {
  checked: number;
  seen: number;
  left: number;
  finished: number;
  failed: number;
}

export class RoomPresenceCheck {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RoomPresenceCheckOptions) {}

  /** Checks now (a gateway start) and then every interval. */
  start(): void {
    const tick = () => {
      this.running = this.checkIfLeader().catch((error: unknown) => this.options.logger.warn({ err: error }, 'room presence check failed'));
    };
    tick();
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One gateway per interval checks (the others would ask LiveKit the same questions). */
  private async checkIfLeader(): Promise<RoomCheckReport | undefined> {
    const lease = await this.options.redis.set(roomCheckLeaseKey(this.options.prefix), '1', 'PX', Math.max(1000, this.options.intervalMs - 100), 'NX');
    if (lease !== 'OK') return undefined;
    return this.check();
  }

  /** Every active voice/video session against its room, now. */
  async check(): Promise<RoomCheckReport> {
    const { db, store, rooms, logger } = this.options;
    const report: RoomCheckReport = { checked: 0, seen: 0, left: 0, finished: 0, failed: 0 };
    const sessions = await db.selectFrom('sessions').select(['id', 'user_id']).where('status', '=', 'active').where('session_type', '!=', 'chat').execute();
    for (const { id: sessionId, user_id: userId } of sessions) {
      report.checked += 1;
      const now = await store.redisTime();
      let present: string[] | undefined;
      try {
        present = await rooms.participants(sessionId);
      } catch (error) {
        report.failed += 1;
        logger.warn({ err: error, sessionId }, 'RoomService did not answer: presence not checked');
        continue;
      }
      const live = await store.peek(userId, sessionId);
      if (!live || live.status !== 'active') continue;
      const provedUntil = live.roomSeenAt ?? 0;
      const room = rooms.roomName(sessionId);
      if (present === undefined) {
        report.finished += 1;
        logger.warn({ sessionId, provedUntil }, 'room presence check: the room no longer exists, the session ends');
        await this.options.apply({ room, identity: '', event: { id: `check-finished:${sessionId}`, kind: 'finished', participantSid: '', at: provedUntil } });
      } else if (present.includes(userId)) {
        report.seen += 1;
        // the clone's agent gone without a webhook: no conversation since the last check that saw it
        if (!present.includes(agentIdentity(sessionId)) && live.agentParticipantSids.length > 0) {
          report.left += 1;
          logger.warn({ sessionId, provedUntil }, 'room presence check: the agent is not in the room, the session pauses');
          for (const participantSid of live.agentParticipantSids) {
            await this.options.apply({ room, identity: agentIdentity(sessionId), event: { id: `check-left:${participantSid}`, kind: 'left', participantSid, at: provedUntil } });
          }
        } else {
          await store.markSeenInRoom(userId, sessionId, now);
        }
      } else {
        report.left += 1;
        logger.warn({ sessionId, provedUntil }, 'room presence check: the user is not in the room, the session pauses');
        for (const participantSid of live.roomParticipantSids) {
          await this.options.apply({ room, identity: userId, event: { id: `check-left:${participantSid}`, kind: 'left', participantSid, at: provedUntil } });
        }
      }
    }
    return report;
  }
}
