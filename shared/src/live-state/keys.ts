/**
 * Every Redis key Tollgate writes, built in one place under a configurable prefix.
 * A user's live keys share the `{userId}` hash tag, so a script over the user's account and all of the user's
 * sessions runs in one Redis Cluster slot (a session never changes user).
 */

/**
 * The keys of one user. A class, so building them (every live-state call does) allocates the key strings only, not
 * a closure per kind of session key.
 */
export class UserKeys {
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

  constructor(prefix: string, userId: string) {
    this.base = `${prefix}:u:{${userId}}:`;
    this.account = `${this.base}acct`;
    this.unsettled = `${this.base}unsettled`;
    this.open = `${this.base}open`;
    this.outbox = `${this.base}outbox`;
    this.presence = `${this.base}presence`;
  }

  /** Hash: the live state of one session. */
  session(sessionId: string): string {
    return `${this.base}s:${sessionId}`;
  }

  /** List: the session's messages (JSON), oldest first. */
  messageLog(sessionId: string): string {
    return `${this.session(sessionId)}:log`;
  }

  /** Hash: clientMessageId → message JSON (idempotent sends). */
  clientMessageIds(sessionId: string): string {
    return `${this.session(sessionId)}:cmid`;
  }

  /** Hash: messageId → message JSON (idempotent replies). */
  messageIds(sessionId: string): string {
    return `${this.session(sessionId)}:mid`;
  }

  /** Set: ids of the LiveKit webhook events applied to the session (duplicates change nothing). */
  webhookIds(sessionId: string): string {
    return `${this.session(sessionId)}:hooks`;
  }

  /**
   * String: the user's new messages in one minute (Redis time, `floor(ms / 60000)`), for MESSAGE_RATE_PER_MIN.
   * message-add.lua derives it from `base` itself, since only the script knows Redis's `now`.
   */
  messageRate(minute: number): string {
    return `${this.base}msgrate:${minute}`;
  }
}

export function userKeys(prefix: string, userId: string): UserKeys {
  return new UserKeys(prefix, userId);
}

/**
 * Keys shared by many users — the due schedule and its leases, the index of non-empty outboxes — are split into
 * LIVE_STATE_BUCKETS buckets by a hash of the user id, each bucket its own hash tag: under a Redis Cluster they
 * spread over the shards instead of making one hot slot. Fixed: a changed count would strand entries in old buckets.
 */
export const LIVE_STATE_BUCKETS = 16;

/** The bucket of a user's entries in the shared keys (FNV-1a of the id). */
export function userBucket(userId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % LIVE_STATE_BUCKETS;
}

/** Every bucket number, 0 … LIVE_STATE_BUCKETS − 1. */
export const allBuckets: readonly number[] = Array.from({ length: LIVE_STATE_BUCKETS }, (_, i) => i);

/** Sorted set: userId scored by the next instant (ms) something is due for that user (exhaustion, idle, timeout). */
export function dueKey(prefix: string, bucket: number): string {
  return `${prefix}:{due:${bucket}}`;
}

/** Sorted set: userId scored by when the lease of the gateway handling its due events runs out (same slot as dueKey). */
export function dueLeaseKey(prefix: string, bucket: number): string {
  return `${prefix}:{due:${bucket}}:leases`;
}

/**
 * Sorted set: the user's open sockets on every gateway (member = socket id), scored by the instant (ms, Redis time)
 * their gateway's lease on them runs out. Gateways renew the leases of their sockets; a dead gateway's lapse.
 */
export function connectionsKey(prefix: string, userId: string): string {
  return `${prefix}:u:{${userId}}:conns`;
}

/**
 * Set, per bucket: the names of the users' outbox streams that may hold something, so the recovery sweep reads it
 * instead of walking the keyspace. Kept beside the scripts, not in them (a script stays in its user's slot): added to
 * after every script that recorded into the outbox, removed from when the relay has emptied it. A process dying
 * between a script and its index write, or an index write lost with its shard's master in a failover, leaves an
 * outbox unindexed until the user's next change — or, if none comes, until the rare keyspace walk finds it.
 */
export function outboxIndexKey(prefix: string, bucket: number): string {
  return `${prefix}:{outboxes:${bucket}}`;
}

/** String with a lifetime: set by the process that walks the keyspace for unindexed outboxes, so one walks at a time. */
export function outboxScanKey(prefix: string): string {
  return `${prefix}:outboxes:scanned`;
}

/** The lease of the gateway that runs this interval's RoomService presence check (room-presence-check.ts). */
export function roomCheckLeaseKey(prefix: string): string {
  return `${prefix}:roomcheck`;
}

/** The pattern of every user's outbox: the keyspace walk (see outboxScanKey) finds unindexed outboxes by it. */
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

/**
 * The billing queue is BILLING_QUEUE_PARTITIONS BullMQ queues, a user's jobs always in the same one (by the user's
 * bucket): each partition under its own hash tag, so under a Redis Cluster the queue spreads over the shards (BullMQ's
 * scripts need every key of one queue in one slot). Fixed, as the buckets are.
 */
export const BILLING_QUEUE_PARTITIONS = 4;

/** The billing queue partition of a user's jobs. */
export function billingPartition(userId: string): number {
  return userBucket(userId) % BILLING_QUEUE_PARTITIONS;
}

/** BullMQ's prefix of one billing queue partition, under ours. */
export function billingQueuePrefix(prefix: string, partition: number): string {
  return `${prefix}:{bull:${partition}}`;
}

/** BullMQ's prefix of the document ingestion queue (one slot: its traffic is small). */
export function ingestQueuePrefix(prefix: string): string {
  return `${prefix}:{ingest}`;
}
