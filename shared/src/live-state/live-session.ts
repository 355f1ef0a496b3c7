/**
 * A session's live state as the Lua scripts keep it in Redis, and the pure meter arithmetic over it
 * (the same rules as shared/src/live-state/lua/includes/live-state.lua; a property test keeps the two in step).
 */
import { formatMoney, minUnits, type Units } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import type { SessionStatus, SessionType, WireRoom, WireSession } from '#shared/contract/socket-events.ts';

export interface LiveSession {
  id: string;
  userId: string;
  cloneId: string;
  type: SessionType;
  status: SessionStatus;
  /** Units per minute, frozen at start. */
  rate: Units;
  startedAt: number;
  endedAt: number | null;
  /** Active ms accumulated up to the last pause (or the end). */
  activeMs: number;
  resumedAt: number;
  pausedAt: number | null;
  lastUserAt: number;
  aiCost: Units;
  msgCount: number;
  userMsgCount: number;
  version: number;
  /** The most the session may cost (set when credits ran out), or null. */
  cap: Units | null;
  reason: string;
  /** Why the session was last paused (user, idle, disconnected); '' if never. */
  pausedBy: string;
  lowSent: boolean;
  /** Voice/video: how many of the user's participants are in the room now. */
  roomParticipants: number;
  /** Voice/video: their participant sids. */
  roomParticipantSids: string[];
  /** Voice/video: the participant sids of the clone's agent in the room. */
  agentParticipantSids: string[];
  /** Voice/video: the last instant a RoomService check saw the user in the room (Redis ms), or null. */
  roomSeenAt: number | null;
  /** Voice/video: the user holds the session (`session:pause`): paused even in a conversation. */
  held: boolean;
  /** Voice/video: while the user has not joined, the instant the session ends `join_timeout` (Redis ms). */
  joinBy: number | null;
  /** Voice/video: while the user waits for the clone's agent, the instant the session ends `agent_timeout`. */
  agentBy: number | null;
  /** Final figures, once ended. */
  total: Units | null;
  timeCost: Units | null;
}

/** An open session read by a script at its `now` (the `open` list of every live-state answer). */
export interface MeterReading {
  id: string;
  type: SessionType;
  status: 'active' | 'paused';
  /** Units per minute. */
  rate: Units;
  /** Active ms up to the script's `now`. */
  activeMs: number;
  /** What the session costs at the script's `now` (time and replies, within its cap). */
  cost: Units;
  /** The low-balance warning was sent for it. */
  lowSent: boolean;
}

/** A JSON list of participant sids as room-event.lua keeps it (cjson writes an empty list as `{}`). */
function participantSids(json: string | undefined): string[] {
  const list: unknown = JSON.parse(json || '[]');
  return Array.isArray(list) ? list.map(String) : [];
}

const optionalNumber = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
const optionalUnits = (v: string | undefined) => (v === undefined || v === '' ? null : BigInt(v));

/**
 * The open sessions and the available credits `elapsedMs` after a script read them (`open` and `budget` of its
 * answer), with the scripts' own arithmetic, assuming nothing changed since: active sessions keep burning, paused
 * ones stand still. What a meter tick shows between two reads of the live state.
 */
export function readingAt(open: readonly MeterReading[], budget: Units, elapsedMs: number): { open: MeterReading[]; available: Units } {
  let available = budget;
  const projected = open.map((session) => {
    if (session.status !== 'active' || elapsedMs <= 0) {
      available -= session.cost;
      return session;
    }
    const activeMs = session.activeMs + elapsedMs;
    // an active session has no cap (only ending sessions get one): its cost is time plus replies
    const cost = session.cost - timeCost(session.rate, session.activeMs) + timeCost(session.rate, activeMs);
    available -= cost;
    return { ...session, activeMs, cost };
  });
  return { open: projected, available };
}

/** Parses the flat string hash the scripts store. */
export function parseLiveSession(hash: Record<string, string>): LiveSession {
  return {
    id: hash.id!,
    userId: hash.userId!,
    cloneId: hash.cloneId!,
    type: hash.type as SessionType,
    status: hash.status as SessionStatus,
    rate: BigInt(hash.rate!),
    startedAt: Number(hash.startedAt),
    endedAt: optionalNumber(hash.endedAt),
    activeMs: Number(hash.activeMs),
    resumedAt: Number(hash.resumedAt),
    pausedAt: optionalNumber(hash.pausedAt),
    lastUserAt: Number(hash.lastUserAt),
    aiCost: BigInt(hash.aiCost ?? '0'),
    msgCount: Number(hash.msgCount),
    userMsgCount: Number(hash.userMsgCount),
    version: Number(hash.version),
    cap: optionalUnits(hash.cap),
    reason: hash.reason ?? '',
    pausedBy: hash.pausedBy ?? '',
    lowSent: hash.lowSent === '1',
    roomParticipants: participantSids(hash.roomIn).length,
    roomParticipantSids: participantSids(hash.roomIn),
    agentParticipantSids: participantSids(hash.agentIn),
    roomSeenAt: optionalNumber(hash.roomSeenAt),
    held: hash.held === '1',
    joinBy: optionalNumber(hash.joinBy),
    agentBy: optionalNumber(hash.agentBy),
    total: optionalUnits(hash.total),
    timeCost: optionalUnits(hash.timeCost),
  };
}

export function activeMsAt(session: LiveSession, now: number): number {
  if (session.status !== 'active') return session.activeMs;
  return session.activeMs + Math.max(0, now - session.resumedAt);
}

/** Time cost from the total active time plus AI replies, within the cap. */
export function costAt(session: LiveSession, now: number): Units {
  if (session.total !== null) return session.total;
  const cost = timeCost(session.rate, activeMsAt(session, now)) + session.aiCost;
  return session.cap === null ? cost : minUnits(cost, session.cap);
}

/** Whole seconds until `available` is used up at the combined rate of the active sessions; null when nothing burns. */
export function secondsLeft(available: Units, open: ReadonlyArray<Pick<LiveSession, 'status' | 'rate'>>): number | null {
  const ratePerMinute = open.filter((s) => s.status === 'active').reduce((sum, s) => sum + s.rate, 0n);
  if (ratePerMinute === 0n) return null;
  if (available <= 0n) return 0;
  return Number((available * 60n) / ratePerMinute);
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Why the session is in its status: the pause's reason while paused, the end reason once ended, '' while active. */
export function statusReason(session: Pick<LiveSession, 'status' | 'reason' | 'pausedBy'>): string {
  if (session.status === 'paused') return session.pausedBy;
  return session.status === 'ended' ? session.reason : '';
}

export function toWireSession(session: LiveSession, now: number): WireSession {
  return {
    id: session.id,
    userId: session.userId,
    cloneId: session.cloneId,
    type: session.type,
    status: session.status,
    startTime: iso(session.startedAt),
    endTime: session.endedAt === null ? null : iso(session.endedAt),
    activeSeconds: Math.floor(activeMsAt(session, now) / 1000),
    ratePerMinute: formatMoney(session.rate),
    cost: formatMoney(costAt(session, now)),
    messageCount: session.msgCount,
    ...(session.status === 'active' ? {} : { reason: statusReason(session) }),
    ...(session.type === 'chat' || session.status === 'ended' ? {} : { room: wireRoom(session) }),
  };
}

/** Who is in a voice/video session's room, and what it waits for: what the user is shown besides the status. */
function wireRoom(session: LiveSession): WireRoom {
  const waitingForUser = session.roomParticipants === 0;
  return {
    user: !waitingForUser,
    agent: session.agentParticipantSids.length > 0,
    held: session.held,
    joinBy: waitingForUser && session.joinBy !== null ? iso(session.joinBy) : null,
    agentBy: !waitingForUser && session.agentParticipantSids.length === 0 && session.agentBy !== null ? iso(session.agentBy) : null,
  };
}
