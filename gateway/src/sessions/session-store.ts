/**
 * Typed access to the live session state in Redis: one method per Lua script (nothing else builds KEYS/ARGV),
 * plus the due-instant schedule. Every method runs one atomic script on Redis server time.
 */
import type { Redis } from 'ioredis';
import type { Units } from '#shared/money/money.ts';
import { dueKey, userKeys, type UserKeys } from '#shared/redis/keys.ts';
import type { SessionStatus, SessionType, WireMessage } from '#shared/contract/socket-events.ts';
import { formatMoney } from '#shared/money/money.ts';
import { parseLiveSession, type LiveSession } from '../meter/live-session.ts';
import { registerScripts, runScript, type ScriptName } from './lua-scripts.ts';
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
}

/** What every live-state script answers. */
export interface Outcome {
  code: ScriptCode;
  /** Redis server time of the operation, ms. */
  now: number;
  /** The next instant something is due for this user, or null. */
  nextDue: number | null;
  /** Credits as of the last balance snapshot minus unsettled totals. */
  budget: Units;
  changes: StateChange[];
  /** Every open session of the user, plus each session the script touched. */
  sessions: Map<string, LiveSession>;
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
  code: number;
  now: string;
  nextDue: string | false;
  budget: string;
  changes: Array<Omit<StateChange, 'at' | 'activeMs'> & { at: string; activeMs: string }> | Record<string, never>;
  sessions: Record<string, Record<string, string>>;
  result: Record<string, unknown> | false;
}

export function parseStoredMessage(json: string): StoredMessage {
  const raw = JSON.parse(json) as Record<string, unknown>;
  return {
    id: String(raw.id),
    sessionId: String(raw.sessionId),
    senderType: raw.senderType === 'ai' ? 'ai' : 'user',
    content: String(raw.content),
    tokensUsed: Number(raw.tokensUsed),
    costIncrement: BigInt(String(raw.costIncrement)),
    createdAt: Number(raw.createdAt),
    clientMessageId: typeof raw.clientMessageId === 'string' ? raw.clientMessageId : null,
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
  };
}

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly options: SessionStoreOptions,
  ) {
    registerScripts(redis);
  }

  private keys(userId: string): UserKeys {
    return userKeys(this.options.prefix, userId);
  }

  private async run(name: ScriptName, userId: string, sessionKeys: string[], args: Array<string | number>): Promise<Outcome> {
    const k = this.keys(userId);
    const common = [k.base, this.options.idlePauseMs, this.options.pausedEndMs, this.options.endedTtlMs];
    const raw = JSON.parse(String(await runScript(this.redis, name, [k.account, k.unsettled, k.open, ...sessionKeys], [...common, ...args]))) as RawOutcome;
    const changes = Array.isArray(raw.changes) ? raw.changes : [];
    return {
      code: raw.code as ScriptCode,
      now: Number(raw.now),
      nextDue: raw.nextDue === false ? null : Number(raw.nextDue),
      budget: BigInt(raw.budget),
      changes: changes.map((c) => ({ ...c, at: Number(c.at), activeMs: Number(c.activeMs) })),
      sessions: new Map(Object.entries(raw.sessions).map(([id, hash]) => [id, parseLiveSession(hash)])),
      result: raw.result === false ? {} : raw.result,
    };
  }

  private messageKeys(userId: string, sessionId: string): string[] {
    const k = this.keys(userId);
    return [k.session(sessionId), k.messageLog(sessionId), k.clientMessageIds(sessionId), k.messageIds(sessionId)];
  }

  /** Applies everything due for the user up to now and returns the user's open sessions. */
  advance(userId: string): Promise<Outcome> {
    return this.run('advance', userId, [], []);
  }

  start(s: StartSession): Promise<Outcome> {
    return this.run('session-start', s.userId, [this.keys(s.userId).session(s.sessionId)], [
      s.sessionId, s.userId, s.cloneId, s.type, s.rate.toString(), s.minStartMs, s.maxOpen,
    ]);
  }

  transition(userId: string, sessionId: string, action: Action, reason = 'user'): Promise<Outcome> {
    return this.run('session-transition', userId, [this.keys(userId).session(sessionId)], [sessionId, action, reason]);
  }

  addMessage(userId: string, sessionId: string, clientMessageId: string, messageId: string, content: string): Promise<Outcome> {
    return this.run('message-add', userId, this.messageKeys(userId, sessionId), [sessionId, clientMessageId, messageId, content]);
  }

  addReply(userId: string, sessionId: string, messageId: string, content: string, tokensUsed: number, cost: Units): Promise<Outcome> {
    return this.run('reply-add', userId, this.messageKeys(userId, sessionId), [
      sessionId, messageId, content, tokensUsed, cost.toString(),
    ]);
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

  /** The last `limit` messages of a session, oldest first. */
  async recentMessages(userId: string, sessionId: string, limit: number): Promise<StoredMessage[]> {
    const items = await this.redis.lrange(this.keys(userId).messageLog(sessionId), -limit, -1);
    return items.map(parseStoredMessage);
  }

  /** Notes that something is due for the user at `at` (an earlier future instant already scheduled is kept). */
  async scheduleDue(userId: string, at: number): Promise<void> {
    await runScript(this.redis, 'schedule-due', [dueKey(this.options.prefix)], [userId, at]);
  }

  /** Users with something due by Redis' now, earliest first. */
  async dueUsers(limit: number): Promise<Array<{ userId: string; at: number }>> {
    const [seconds, micros] = await this.redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const flat = await this.redis.zrangebyscore(dueKey(this.options.prefix), '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit);
    const due: Array<{ userId: string; at: number }> = [];
    for (let i = 0; i < flat.length; i += 2) due.push({ userId: flat[i]!, at: Number(flat[i + 1]) });
    return due;
  }

  /** After handling the entry scored `handledAt`: moves it to `next` (or removes it) unless it was lowered meanwhile. */
  async rescheduleDue(userId: string, handledAt: number, next: number | null): Promise<void> {
    await runScript(this.redis, 'reschedule-due', [dueKey(this.options.prefix)], [userId, handledAt, next === null ? '' : next]);
  }
}
