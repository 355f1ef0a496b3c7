/**
 * Every Redis key Tollgate writes, built in one place under a configurable prefix.
 * A user's live keys share the `{userId}` hash tag, so a script over the user's account and all of the user's
 * sessions runs in one Redis Cluster slot (a session never changes user).
 */

export interface UserKeys {
  /** Prefix of every key of this user; Lua scripts derive session keys from it. */
  readonly base: string;
  /** Hash: credits (units, as of creditsVersion), creditsVersion, cursor (ms of the last meter advance). */
  readonly account: string;
  /** Hash: sessionId → total (units) of ended sessions the billing worker has not acknowledged yet. */
  readonly unsettled: string;
  /** Set of the user's active and paused session ids. */
  readonly open: string;
  /** Stream of billing facts not yet relayed to the billing queue (written by the same script as the change). */
  readonly outbox: string;
  /** Hash: gateway id → last instant (ms) that gateway saw one of the user's sockets. */
  readonly presence: string;
  /** Hash: the live state of one session. */
  session(sessionId: string): string;
  /** List: the session's messages (JSON), oldest first. */
  messageLog(sessionId: string): string;
  /** Hash: clientMessageId → message JSON (idempotent sends). */
  clientMessageIds(sessionId: string): string;
  /** Hash: messageId → message JSON (idempotent replies). */
  messageIds(sessionId: string): string;
  /** Set: ids of the LiveKit webhook events applied to the session (duplicates change nothing). */
  webhookIds(sessionId: string): string;
  /**
   * String: the user's new messages in one minute (Redis time, `floor(ms / 60000)`), for MESSAGE_RATE_PER_MIN.
   * message-add.lua derives it from `base` itself, since only the script knows Redis's `now`.
   */
  messageRate(minute: number): string;
}

export function userKeys(prefix: string, userId: string): UserKeys {
  const base = `${prefix}:u:{${userId}}:`;
  const session = (sessionId: string) => `${base}s:${sessionId}`;
  return {
    base,
    account: `${base}acct`,
    unsettled: `${base}unsettled`,
    open: `${base}open`,
    outbox: `${base}outbox`,
    presence: `${base}presence`,
    session,
    messageLog: (sessionId) => `${session(sessionId)}:log`,
    clientMessageIds: (sessionId) => `${session(sessionId)}:cmid`,
    messageIds: (sessionId) => `${session(sessionId)}:mid`,
    webhookIds: (sessionId) => `${session(sessionId)}:hooks`,
    messageRate: (minute) => `${base}msgrate:${minute}`,
  };
}

/** Sorted set: userId scored by the next instant (ms) something is due for that user (exhaustion, idle, timeout). */
export function dueKey(prefix: string): string {
  return `${prefix}:{due}`;
}

/** Sorted set: userId scored by when the lease of the gateway handling its due events runs out. */
export function dueLeaseKey(prefix: string): string {
  return `${prefix}:{due}:leases`;
}

/**
 * Sorted set: the user's open sockets on every gateway (member = socket id), scored by the instant (ms, Redis time)
 * their gateway's lease on them runs out. Gateways renew the leases of their sockets; a dead gateway's lapse.
 */
export function connectionsKey(prefix: string, userId: string): string {
  return `${prefix}:u:{${userId}}:conns`;
}

/**
 * Set: the names of the users' outbox streams that hold something, kept by the Lua scripts that append to an outbox
 * and by outbox-ack.lua, which takes an emptied one out. The recovery sweep reads it instead of scanning the keyspace.
 */
export function outboxIndexKey(prefix: string): string {
  return `${prefix}:outboxes`;
}

/** Set once the outboxes written before the index existed have been indexed (one keyspace SCAN, ever). */
export function outboxIndexBackfilledKey(prefix: string): string {
  return `${prefix}:outboxes:backfilled`;
}

/** The pattern of every user's outbox: the one backfill SCAN (see outboxIndexBackfilledKey) finds pre-index outboxes by it. */
export function outboxPattern(prefix: string): string {
  return `${prefix}:u:*:outbox`;
}

/** The user id inside a user key (the `{userId}` hash tag). */
export function userIdOfKey(key: string): string | undefined {
  return /:u:\{([^}]+)\}:/.exec(key)?.[1];
}

/**
 * String: the user id owning a voice/video session's room, so a webhook about the room (which names only the room)
 * finds the user's live state. Tagged by session: it is written apart from the user's scripts.
 */
export function roomOwnerKey(prefix: string, sessionId: string): string {
  return `${prefix}:room:{${sessionId}}`;
}

/** String: the voice agent serving a session's room (its claim, renewed while it serves). */
export function agentClaimKey(prefix: string, sessionId: string): string {
  return `${prefix}:room:{${sessionId}}:agent`;
}

/** Set: voice/video sessions whose user is in the room (they need a voice agent). */
export function occupiedRoomsKey(prefix: string): string {
  return `${prefix}:rooms:occupied`;
}

/** BullMQ's own prefix, under ours. */
export function queuePrefix(prefix: string): string {
  return `${prefix}:bull`;
}
