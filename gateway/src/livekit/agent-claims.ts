/**
 * Which voice agent serves which session's room: one claim per session in Redis, taken by the first agent that
 * answers a dispatch and renewed while it serves; an agent that dies loses it after the claim lifetime, and the
 * next time the user is in the room another agent is dispatched.
 */
import type { RedisClient } from '#shared/live-state/redis-client.ts';
import { agentClaimKey } from '#shared/live-state/keys.ts';
import { runScript } from '#shared/live-state/lua-scripts.ts';

export class AgentClaims {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** How long a claim lasts without renewal (the agent renews at a third of it). */
    readonly ttlMs: number,
  ) {
  }

  /** Takes or renews the claim; false when another agent holds it. */
  async claim(sessionId: string, agentId: string): Promise<boolean> {
    return (await runScript(this.redis, 'agent-claim', [agentClaimKey(this.prefix, sessionId)], [agentId, this.ttlMs])) === 1;
  }

  async release(sessionId: string, agentId: string): Promise<void> {
    await runScript(this.redis, 'agent-release', [agentClaimKey(this.prefix, sessionId)], [agentId]);
  }

  /** The agent holding the session's claim, or null. */
  holder(sessionId: string): Promise<string | null> {
    return this.redis.get(agentClaimKey(this.prefix, sessionId));
  }
}
