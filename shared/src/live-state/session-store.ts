/**
 * Typed access to the live session state in Redis: one method per Lua script (nothing else builds KEYS/ARGV),
 * plus the due-instant schedule. Every method runs one atomic script on Redis server time.
 */
import { confirmReplicated, scanKeys, type RedisClient, type ReplicaAck } from '#shared/live-state/redis-client.ts';
import type { Units } from '#shared/money/money.ts';
import { allBuckets, dueKey, dueLeaseKey, outboxIndexKey, outboxPattern, outboxScanKey, userBucket, userIdOfKey, userKeys, type UserKeys } from '#shared/live-state/keys.ts';
import type { Config } from '#shared/config/config.ts';
import type { Citation, SessionStatus, SessionType, WireMessage } from '#shared/contract/socket-events.ts';
import { formatMoney } from '#shared/money/money.ts';
import { parseLiveSession, type LiveSession, type MeterReading } from './live-session.ts';
import { runScript, type ScriptName } from './lua-scripts.ts';
import type { ScriptCode } from './script-codes.ts';

export interface SessionStoreOptions {
  /** Key prefix (config REDIS_PREFIX). */
  prefix: string;
  /** An active chat session with no user message for this long pauses. */
  idlePauseMs: number;
  /** A paused session ends after this long. */
  pausedEndMs: number;
  /** How long an ended session's live keys are kept. */
  endedTtlMs: number;
  /** No gateway has seen the user for this long: their active chats pause where they were last seen. */
  presenceTimeoutMs: number;
  /** A sighting this old means its gateway stopped seeing the user (a missed meter tick). */
  presenceStaleMs: number;
  /** How often an active session records a checkpoint for Postgres. */
  checkpointMs: number;
  /** New messages one user may send per minute, across gateways. */
  messageRatePerMin: number;
  /** A voice/video session whose user has not joined its room by this long after the start ends. */
  joinTimeoutMs: number;
  /** A user in a voice/video room whom no agent joins (or whose agent left) for this long: the session ends. */
  agentJoinTimeoutMs: number;
  /** A voice/video conversation in which nobody spoke for this long pauses (0: never). */
  voiceIdleMs: number;
  /** A LiveKit webhook whose instant is further than this from Redis time at receipt is applied at receipt (WEBHOOK_SKEW_MS). */
  webhookSkewMs: number;
  /** How often one process walks the keyspace for outboxes the index missed (config OUTBOX_SCAN_MS). */
  outboxScanMs: number;
  /** Replicas that must hold a user message or a reply before it is acknowledged (REDIS_ACK_REPLICAS, _TIMEOUT_MS). */
  replicaAck: ReplicaAck;
}

/** The store settings a config implies. */
export function storeOptions(config: Config): SessionStoreOptions {
  return {
    prefix: config.REDIS_PREFIX,
    idlePauseMs: config.IDLE_PAUSE_MS,
    pausedEndMs: config.PAUSED_END_MS,
    endedTtlMs: config.ENDED_STATE_TTL_MS,
    presenceTimeoutMs: config.PRESENCE_TIMEOUT_MS,
    presenceStaleMs: config.METER_TICK_MS + 250,
    checkpointMs: config.CHECKPOINT_MS,
    messageRatePerMin: config.MESSAGE_RATE_PER_MIN,
    joinTimeoutMs: config.JOIN_TIMEOUT_MS,
    webhookSkewMs: config.WEBHOOK_SKEW_MS,
    agentJoinTimeoutMs: config.AGENT_JOIN_TIMEOUT_MS,
    voiceIdleMs: config.VOICE_IDLE_MS,
    outboxScanMs: config.OUTBOX_SCAN_MS,
    replicaAck: { replicas: config.REDIS_ACK_REPLICAS, timeoutMs: config.REDIS_ACK_TIMEOUT_MS },
  };
}

/** What a LiveKit webhook says about the user's participant (or the whole room, `finished`). */
export interface RoomEvent {
  /** The webhook event's id (duplicates are dropped by it). */
  id: string;
  kind: 'joined' | 'left' | 'finished';
  /** The participant's sid ('' for `finished`): each joins once and leaves once. */
  participantSid: string;
  /** Whose participant: the session's user, or the clone's voice agent ('user' for `finished`). */
  role?: 'user' | 'agent';
  /** When it happened (ms); applied no later than now. */
  at: number;
}

/** A billing fact a script recorded in the user's outbox stream, with the stream entry id. */
export interface OutboxEntry {
  id: string;
  kind: 'state' | 'settle' | 'message' | 'checkpoint';
  /** JSON written by the script (numbers as decimal strings). */
  data: string;
}

/** One state change made by a script, in the order it was made. */
export interface StateChange {
  sessionId: string;
  status: SessionStatus;
  version: number;
  at: number;
  reason: string;
  activeMs: number;
}

export interface StoredMessage {
  id: string;
  sessionId: string;
  senderType: 'user' | 'ai';
  content: string;
  tokensUsed: number;
  costIncrement: Units;
  createdAt: number;
  clientMessageId: string | null;
  /** The passages an AI reply rests on; empty for user messages. */
  citations: Citation[];
}

/** What every live-state script answers. */
export interface Outcome {
  /**
   * The account's revision after the script: it moves with every change to what `open`, `budget` and `available`
   * derive from, so `open` projected forward in time (`readingAt`) stays true while `revision()` still answers it.
   */
  rev: number;
  /** False when `open` is empty because the script was asked not to read it (`advance` for the due scheduler). */
  reading: boolean;
  /**
   * The next instant (Redis time, ms) an idle pause, exhaustion or timeout is due, apart from absence and
   * checkpoints; null when none is. `open` projected past it may miss that event (read the state there instead).
   */
  eventDue: number | null;
  code: ScriptCode;
  /** Redis server time of the operation, ms. */
  now: number;
  /** The next instant something is due for this user, or null. */
  nextDue: number | null;
  /**
   * Whether `nextDue` must go into the due schedule: false when the schedule already holds it or an earlier
   * instant (the script found nothing new due sooner). The due scheduler reschedules from `nextDue` regardless.
   */
  schedule: boolean;
  /** Credits as of the last balance snapshot minus unsettled totals. */
  budget: Units;
  /** `budget` minus what the open sessions cost at `now` (may be below zero by rounding; never spendable). */
  available: Units;
  /** Every open (active or paused) session of the user, read at `now`: what meter ticks and warnings need. */
  open: MeterReading[];
  changes: StateChange[];
  /** The whole state of each session the script changed or is about (not every open session: see `open`). */
  sessions: Map<string, LiveSession>;
  /** The billing facts this script recorded; the caller relays them and deletes them from the outbox. */
  outbox: OutboxEntry[];
  result: Record<string, unknown>;
}

type Action = 'pause' | 'resume' | 'end';

export interface StartSession {
  userId: string;
  sessionId: string;
  cloneId: string;
  type: SessionType;
  rate: Units;
  minStartMs: number;
  /** Most open sessions a user may have. */
  maxOpen: number;
}

interface RawOutcome {
  rev: number;
  reading: boolean;
  eventDue?: string | false;
  code: number;
  now: string;
  nextDue: string | false;
  schedule: boolean;
  budget: string;
  available: string;
  /** [id, type, status, rate, activeMs, cost, lowSent] per open session; cjson writes an empty list as {}. */
  open: Array<[string, string, string, string, string, string, string]> | Record<string, never>;
  changes: Array<Omit<StateChange, 'at' | 'activeMs'> & { at: string; activeMs: string }> | Record<string, never>;
  sessions: Record<string, Record<string, string>>;
  outbox: OutboxEntry[] | Record<string, never>;
  result: Record<string, unknown> | false;
}

export function parseStoredMessage(json: string): StoredMessage {
  return storedMessageOf(JSON.parse(json) as Record<string, unknown>);
}

/** A message as the Lua scripts record it (cjson-decoded: in the session's message list, in an outbox entry). */
export function storedMessageOf(raw: Record<string, unknown>): StoredMessage {
  return {
    id: String(raw.id),
    sessionId: String(raw.sessionId),
    senderType: raw.senderType === 'ai' ? 'ai' : 'user',
    content: String(raw.content),
    tokensUsed: Number(raw.tokensUsed),
    costIncrement: BigInt(String(raw.costIncrement)),
    createdAt: Number(raw.createdAt),
    clientMessageId: typeof raw.clientMessageId === 'string' ? raw.clientMessageId : null,
    // cjson writes an empty array as {}
    citations: Array.isArray(raw.citations) ? (raw.citations as Citation[]) : [],
  };
}

export function toWireMessage(message: StoredMessage): WireMessage {
  return {
    id: message.id,
    sessionId: message.sessionId,
    senderType: message.senderType,
    content: message.content,
    tokensUsed: message.tokensUsed,
    costIncrement: formatMoney(message.costIncrement),
    createdAt: new Date(message.createdAt).toISOString(),
    ...(message.senderType === 'ai' ? { citations: message.citations } : {}),
  };
}

export class SessionStore {
  private readonly settings: string;
  /** Set by requestOutboxWalk: this process's next sweep walks the keyspace whatever the shared marker says. */
  private outboxWalkRequested = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: SessionStoreOptions,
  ) {
    this.settings = JSON.stringify({
      idleMs: options.idlePauseMs,
      pausedEndMs: options.pausedEndMs,
      endedTtlMs: options.endedTtlMs,
      presenceTimeoutMs: options.presenceTimeoutMs,
      presenceStaleMs: options.presenceStaleMs,
      checkpointMs: options.checkpointMs,
      messageRatePerMin: options.messageRatePerMin,
      joinTimeoutMs: options.joinTimeoutMs,
      agentJoinTimeoutMs: options.agentJoinTimeoutMs,
      voiceIdleMs: options.voiceIdleMs,
    });
  }

  private keys(userId: string): UserKeys {
    return userKeys(this.options.prefix, userId);
  }

  /**
   * Runs a live-state script; `gatewayId` marks a request from a socket on that gateway (refreshes presence).
   * A run that recorded billing facts — and every message and reply, `stored` (a repeat answers with a message whose
   * first write may not have been confirmed) — returns only once the configured replicas hold it (REDIS_ACK_REPLICAS):
   * no answer and no relayed fact rests on a write a failover can take back, so Postgres never holds a fact the
   * live state lost.
   */
  private async run(name: ScriptName, userId: string, sessionKeys: string[], args: Array<string | number>, gatewayId = '', stored = false): Promise<Outcome> {
    const k = this.keys(userId);
    const keys = [k.account, k.unsettled, k.open, k.outbox, k.presence, ...sessionKeys];
    const raw = JSON.parse(String(await runScript(this.redis, name, keys, [k.base, this.settings, gatewayId, ...args]))) as RawOutcome;
    if (stored || (Array.isArray(raw.outbox) && raw.outbox.length > 0)) await confirmReplicated(this.redis, k.account, this.options.replicaAck);
    // every run that recorded indexes the outbox again (one SADD): an index entry lost with its shard's master, or
    // taken out by an ack racing this run, comes back with the user's next change. Not awaited: the answer need not
    // wait for the index, and an index write lost to a crash is what the keyspace walk is for (see outboxIndexKey)
    if (Array.isArray(raw.outbox) && raw.outbox.length > 0) this.redis.sadd(outboxIndexKey(this.options.prefix, userBucket(userId)), k.outbox).catch(() => undefined);
    const changes = Array.isArray(raw.changes) ? raw.changes : [];
    const open = Array.isArray(raw.open) ? raw.open : [];
    return {
      rev: Number(raw.rev),
      reading: raw.reading !== false,
      // a missing field (a script that never says) reads as now: nothing is projected past it
      eventDue: raw.eventDue === false ? null : typeof raw.eventDue === 'string' ? Number(raw.eventDue) : Number(raw.now),
      code: raw.code as ScriptCode,
      now: Number(raw.now),
      nextDue: raw.nextDue === false ? null : Number(raw.nextDue),
      schedule: raw.schedule === true && raw.nextDue !== false,
      budget: BigInt(raw.budget),
      available: BigInt(raw.available),
      open: open.map(([id, type, status, rate, activeMs, cost, lowSent]) => ({
        id,
        type: type as SessionType,
        status: status as MeterReading['status'],
        rate: BigInt(rate),
        activeMs: Number(activeMs),
        cost: BigInt(cost),
        lowSent: lowSent === '1',
      })),
      changes: changes.map((c) => ({ ...c, at: Number(c.at), activeMs: Number(c.activeMs) })),
      sessions: new Map(Object.entries(raw.sessions).map(([id, hash]) => [id, parseLiveSession(hash)])),
      outbox: Array.isArray(raw.outbox) ? raw.outbox : [],
      result: raw.result === false ? {} : raw.result,
    };
  }

  private messageKeys(userId: string, sessionId: string): string[] {
    const k = this.keys(userId);
    return [k.session(sessionId), k.messageLog(sessionId), k.clientMessageIds(sessionId), k.messageIds(sessionId)];
  }

  /**
   * Applies everything due for the user up to now and reads the user's open sessions (`open`). With `gatewayId`, it
   * is a sighting of the user's sockets on that gateway (meter ticks, connects); with `sessionId`, that session's
   * whole state is in `sessions` too (open or ended, while its live state is kept). When nothing is due it reads
   * and refreshes only (advance.lua). `dueOnly` (the due scheduler): when nothing was due, the answer carries no
   * meter reading (`reading` false, `open` empty), only the next due instant.
   */
  advance(userId: string, gatewayId = '', sessionId = '', dueOnly = false): Promise<Outcome> {
    return this.run('advance', userId, [], [sessionId, dueOnly ? 'due' : ''], gatewayId);
  }

  /** The user's last socket on `gatewayId` closed; their chats pause if no other gateway sees them. */
  presenceLeave(userId: string, gatewayId: string): Promise<Outcome> {
    return this.run('presence-leave', userId, [], [], gatewayId);
  }

  /** Whether the user has an active or paused session (one SCARD). */
  async hasOpenSession(userId: string): Promise<boolean> {
    return (await this.redis.scard(this.keys(userId).open)) > 0;
  }

  /** The account's current revision (`Outcome.rev`): one HGET, what a meter tick asks before it reads anything more. */
  async revision(userId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys(userId).account, 'rev')) ?? '0');
  }

  /** A heartbeat of `gatewayId`, which still holds a socket of the user; false when the meter must judge the gap. */
  async refreshPresence(userId: string, gatewayId: string): Promise<boolean> {
    const refreshed = await runScript(this.redis, 'presence-refresh', [this.keys(userId).presence], [gatewayId, this.options.presenceTimeoutMs]);
    return refreshed === 1;
  }

  /**
   * Applies a verified LiveKit webhook about the user's participant in the session's room (room-event.lua). `proved`:
   * the instant is Redis's own (a RoomService check's last sighting), not LiveKit's clock, so no skew bound applies.
   */
  roomEvent(userId: string, sessionId: string, event: RoomEvent, proved = false): Promise<Outcome> {
    const k = this.keys(userId);
    return this.run('room-event', userId, [k.session(sessionId), k.webhookIds(sessionId)], [
      sessionId, event.id, event.kind, event.participantSid, event.at, proved ? Number.MAX_SAFE_INTEGER : this.options.webhookSkewMs,
      event.role ?? 'user',
    ]);
  }

  /** Someone spoke in a voice/video session's room (voice-activity.lua): not idle; a silence pause lifts. */
  voiceActivity(userId: string, sessionId: string): Promise<Outcome> {
    return this.run('voice-activity', userId, [this.keys(userId).session(sessionId)], [sessionId]);
  }

  /** A RoomService check saw the user in the session's room at `at` (Redis ms): the latest proved presence. */
  async markSeenInRoom(userId: string, sessionId: string, at: number): Promise<void> {
    await runScript(this.redis, 'room-seen', [this.keys(userId).session(sessionId)], [at]);
  }

  /** Redis's clock (ms): the one every instant of the live state is on. */
  async redisTime(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  start(s: StartSession, gatewayId = ''): Promise<Outcome> {
    return this.run('session-start', s.userId, [this.keys(s.userId).session(s.sessionId)], [
      s.sessionId, s.userId, s.cloneId, s.type, s.rate.toString(), s.minStartMs, s.maxOpen,
    ], gatewayId);
  }

  transition(userId: string, sessionId: string, action: Action, reason = 'user', gatewayId = ''): Promise<Outcome> {
    return this.run('session-transition', userId, [this.keys(userId).session(sessionId)], [sessionId, action, reason], gatewayId);
  }

  addMessage(userId: string, sessionId: string, clientMessageId: string, messageId: string, content: string, gatewayId = ''): Promise<Outcome> {
    return this.run('message-add', userId, this.messageKeys(userId, sessionId), [sessionId, clientMessageId, messageId, content], gatewayId, true);
  }

  addReply(userId: string, sessionId: string, reply: { messageId: string; content: string; tokensUsed: number; cost: Units; citations: Citation[] }): Promise<Outcome> {
    return this.run('reply-add', userId, this.messageKeys(userId, sessionId), [
      sessionId, reply.messageId, reply.content, reply.tokensUsed, reply.cost.toString(), JSON.stringify(reply.citations),
    ], '', true);
  }

  /** The ids of the user's ended sessions whose totals still count as unsettled. */
  unsettledIds(userId: string): Promise<string[]> {
    return this.redis.hkeys(this.keys(userId).unsettled);
  }

  /** Takes a Postgres balance snapshot; `included` are unsettled sessions it already includes. */
  applyBalance(userId: string, credits: Units, creditsVersion: string, included: string[]): Promise<Outcome> {
    return this.run('balance-snapshot', userId, [], [credits.toString(), creditsVersion, ...included]);
  }

  /** A session's stored state as it is, without advancing the meter (ended sessions do not change). */
  async peek(userId: string, sessionId: string): Promise<LiveSession | null> {
    const hash = await this.redis.hgetall(this.keys(userId).session(sessionId));
    return hash.id ? parseLiveSession(hash) : null;
  }

  /** True only the first time it is called for a session. */
  async markLowBalance(userId: string, sessionId: string): Promise<boolean> {
    return (await runScript(this.redis, 'mark-low-balance', [this.keys(userId).session(sessionId)], [])) === 1;
  }

  /** Every message of a session still in the live state, oldest first. */
  async allMessages(userId: string, sessionId: string): Promise<StoredMessage[]> {
    return (await this.redis.lrange(this.keys(userId).messageLog(sessionId), 0, -1)).map(parseStoredMessage);
  }

  /** The last `limit` messages of a session, oldest first. */
  async recentMessages(userId: string, sessionId: string, limit: number): Promise<StoredMessage[]> {
    const items = await this.redis.lrange(this.keys(userId).messageLog(sessionId), -limit, -1);
    return items.map(parseStoredMessage);
  }

  /** Whether the due schedule holds the user (a lost entry leaves an open session with nothing to run its events). */
  async isScheduled(userId: string): Promise<boolean> {
    return (await this.redis.zscore(dueKey(this.options.prefix, userBucket(userId)), userId)) !== null;
  }

  /** Notes that something is due for the user at `at` (an earlier future instant already scheduled is kept). */
  async scheduleDue(userId: string, at: number): Promise<void> {
    await runScript(this.redis, 'schedule-due', [dueKey(this.options.prefix, userBucket(userId))], [userId, at]);
  }

  /**
   * Claims up to `limit` users of each bucket whose due instant has passed, for `leaseMs`: the buckets are asked at
   * once (under a cluster, on their shards).
   */
  async claimDue(limit: number, leaseMs: number): Promise<Array<{ userId: string; at: number }>> {
    const { prefix } = this.options;
    const flats = await Promise.all(allBuckets.map((bucket) =>
      runScript(this.redis, 'claim-due', [dueKey(prefix, bucket), dueLeaseKey(prefix, bucket)], [leaseMs, limit]) as Promise<string[]>));
    const due: Array<{ userId: string; at: number }> = [];
    for (const flat of flats) for (let i = 0; i < flat.length; i += 2) due.push({ userId: flat[i]!, at: Number(flat[i + 1]) });
    return due;
  }

  /** After handling the entry scored `handledAt`: moves it to `next` (or removes it) and ends the lease. */
  async rescheduleDue(userId: string, handledAt: number, next: number | null): Promise<void> {
    const bucket = userBucket(userId);
    await runScript(this.redis, 'reschedule-due', [dueKey(this.options.prefix, bucket), dueLeaseKey(this.options.prefix, bucket)], [
      userId, handledAt, next === null ? '' : next,
    ]);
  }

  /** Billing facts still in the user's outbox, oldest first (an empty outbox leaves the index of non-empty ones). */
  async outboxEntries(userId: string, count = 500): Promise<OutboxEntry[]> {
    const outbox = this.keys(userId).outbox;
    const rows = await this.redis.xrange(outbox, '-', '+', 'COUNT', count);
    if (rows.length === 0) await this.unindexIfEmpty(userId, 0);
    return rows.map(([id, fields]) => {
      const map = new Map<string, string>();
      for (let i = 0; i < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
      return { id, kind: map.get('kind') as OutboxEntry['kind'], data: map.get('data') ?? '{}' };
    });
  }

  /** Deletes relayed entries from the user's outbox; an outbox left empty leaves the index. */
  async ackOutbox(userId: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const left = Number(await runScript(this.redis, 'outbox-ack', [this.keys(userId).outbox], ids));
    await this.unindexIfEmpty(userId, left);
  }

  /**
   * An empty outbox leaves its bucket of the index. Not atomic with the outbox (another slot): a script recording
   * into it between the count and this SREM has its outbox unindexed until its own relay empties it — or, if its
   * process dies first, until the keyspace walk.
   */
  private async unindexIfEmpty(userId: string, left: number): Promise<void> {
    if (left === 0) await this.redis.srem(outboxIndexKey(this.options.prefix, userBucket(userId)), this.keys(userId).outbox);
  }

  /**
   * Asks for a keyspace walk at the next sweep: Redis came back from a restart or a node of the cluster left, and the
   * index writes of its last moments may be lost while the outbox writes before them were kept (AOF keeps a prefix).
   */
  requestOutboxWalk(): void {
    this.outboxWalkRequested = true;
  }

  /**
   * Users whose outbox may hold something, for the recovery sweep: the members of every bucket of the outbox index
   * (SSCAN, no keyspace walk) — and, every OUTBOX_SCAN_MS by one process of all (or when requestOutboxWalk asked),
   * every outbox in the keyspace (SCAN on each node), which finds those the index missed (a process that died between
   * a script and its index write, index writes lost with a Redis restart or a failover, an outbox written by a version
   * without the index).
   */
  async usersWithOutbox(): Promise<string[]> {
    const users = new Set<string>();
    const add = (keys: string[]) => {
      for (const key of keys) {
        const userId = userIdOfKey(key);
        if (userId) users.add(userId);
      }
    };
    const { prefix, outboxScanMs } = this.options;
    await Promise.all(allBuckets.map(async (bucket) => {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.sscan(outboxIndexKey(prefix, bucket), cursor, 'COUNT', 1000);
        cursor = next;
        add(keys);
      } while (cursor !== '0');
    }));
    const requested = this.outboxWalkRequested;
    this.outboxWalkRequested = false;
    if ((await this.redis.set(outboxScanKey(prefix), new Date().toISOString(), 'PX', outboxScanMs, 'NX')) === 'OK' || requested) {
      // what the walk finds is indexed too, so a sweep that cannot relay it now finds it next time
      await scanKeys(this.redis, outboxPattern(prefix), async (keys) => {
        add(keys);
        await Promise.all(keys.flatMap((key) => {
          const userId = userIdOfKey(key);
          return userId ? [this.redis.sadd(outboxIndexKey(prefix, userBucket(userId)), key)] : [];
        }));
      });
    }
    return [...users];
  }
}
