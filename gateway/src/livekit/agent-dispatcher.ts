/**
 * Finds voice agents for rooms that need one. A session needs an agent while its user is in its room and it is not
 * over; such sessions are kept in one set (`<prefix>:rooms:occupied`). When the user joins, and on every sweep
 * (RECONCILE_MS, so a crashed agent's sessions are picked up once its claim lapses), each one no agent holds is
 * offered to every connected agent; the first claim wins (AgentClaims).
 */
import type { RedisClient } from '#shared/live-state/redis-client.ts';
import type { Logger } from 'pino';
import type { AgentDispatch } from '#shared/contract/agent-events.ts';
import { occupiedRoomsKey } from '#shared/live-state/keys.ts';
import type { LiveSession } from '#shared/live-state/live-session.ts';
import type { SessionStore } from '#shared/live-state/session-store.ts';
import type { AgentNamespace } from '../transport/agent-events.ts';
import type { AgentClaims } from './agent-claims.ts';
import type { VoiceRooms } from './voice-rooms.ts';

export interface AgentDispatcherOptions {
  redis: RedisClient;
  prefix: string;
  agents: AgentNamespace;
  claims: AgentClaims;
  rooms: VoiceRooms;
  store: SessionStore;
  logger: Logger;
}

export class AgentDispatcher {
  private readonly key: string;

  constructor(private readonly options: AgentDispatcherOptions) {
    this.key = occupiedRoomsKey(options.prefix);
  }

  /** A room event or an end changed the session: offer it to agents if its user is in the room, else forget it. */
  async roomChanged(session: LiveSession): Promise<void> {
    const needed = session.type !== 'chat' && session.status !== 'ended' && session.roomParticipants > 0;
    if (!needed) {
      await this.options.redis.srem(this.key, session.id);
      return;
    }
    await this.options.redis.sadd(this.key, session.id);
    await this.offer({ sessionId: session.id, userId: session.userId, cloneId: session.cloneId, type: session.type as AgentDispatch['type'] });
  }

  /** Offers every occupied room no agent holds again; forgets rooms whose session is over or gone. */
  async sweep(): Promise<number> {
    const { redis, rooms, store } = this.options;
    let offered = 0;
    for (const sessionId of await redis.smembers(this.key)) {
      const userId = await rooms.ownerOf(sessionId);
      const live = userId ? await store.peek(userId, sessionId) : null;
      if (!live || live.status === 'ended' || live.roomParticipants === 0) {
        await redis.srem(this.key, sessionId);
        continue;
      }
      if (await this.offer({ sessionId, userId: live.userId, cloneId: live.cloneId, type: live.type as AgentDispatch['type'] })) offered += 1;
    }
    return offered;
  }

  private async offer(dispatch: AgentDispatch): Promise<boolean> {
    if ((await this.options.claims.holder(dispatch.sessionId)) !== null) return false;
    this.options.agents.emit('agent:dispatch', dispatch);
    return true;
  }
}
