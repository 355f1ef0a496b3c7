/**
 * What the gateway does with sessions, independent of the transport: start, pause, resume, end, read, message,
 * rate; advancing users whose events are due; and the meter ticks. Every change goes through the Lua scripts
 * (SessionStore), then `commit` queues the billing jobs it implies, schedules the user's next due instant and
 * tells the user's sockets. Handlers throw AppError; the transport turns errors into answers.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError, toWireError } from '#shared/errors/app-error.ts';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { replyCost } from '#shared/money/pricing.ts';
import {
  billingJobId,
  type BillingJobData,
  type BillingJobName,
  type SessionHeader,
} from '#shared/contract/billing-jobs.ts';
import type {
  ClientPayload,
  ServerToClientEvents,
  WireMessage,
  WireSession,
} from '#shared/contract/socket-events.ts';
import type { ServerToAgentEvents } from '#shared/contract/agent-events.ts';
import type { ClientResults } from '#shared/contract/socket-events.ts';
import type { VoiceRooms } from '../livekit/voice-rooms.ts';
import type { RoomWebhook } from '../livekit/room-webhooks.ts';
import type { Passage, ReplyGenerator, ReplyRequest } from '../replies/reply-generator.ts';
import { countPromptTokens, countTokens } from '../replies/count-tokens.ts';
import { buildChatMessages } from '../replies/system-prompt.ts';
import { CloneProfiles } from '../replies/clone-profiles.ts';
import { DeltaCoalescer } from '../replies/delta-coalescer.ts';
import { ReplySlots } from '../replies/reply-slots.ts';
import { secondsLeft, toWireSession, type LiveSession } from '#shared/live-state/live-session.ts';
import { assertScriptOk, ScriptCode } from '#shared/live-state/script-codes.ts';
import type { OutboxRelay } from '../outbox/outbox-relay.ts';
import { refreshBalance } from '#shared/live-state/balance-refresh.ts';
import { parseStoredMessage, toWireMessage, type Outcome, type SessionStore, type StoredMessage } from '#shared/live-state/session-store.ts';

/** Sends an event to the sockets of a user: every one on any gateway process, or this process's only. */
export interface UserNotifier {
  emit<E extends keyof ServerToClientEvents>(userId: string, event: E, ...args: Parameters<ServerToClientEvents[E]>): void;
  emitLocal<E extends keyof ServerToClientEvents>(userId: string, event: E, ...args: Parameters<ServerToClientEvents[E]>): void;
  /** To the voice agent serving a voice/video session (its transcript and state), on any gateway process. */
  emitAgent<E extends keyof ServerToAgentEvents>(sessionId: string, event: E, ...args: Parameters<ServerToAgentEvents[E]>): void;
}

/** Voice/video rooms (gateway/src/livekit/voice-rooms.ts) and the agents that speak in them. */
export interface RoomHooks {
  rooms: VoiceRooms;
  /** A room event or an end changed a voice/video session (it may need a voice agent, or no longer). */
  roomChanged(session: LiveSession): Promise<void>;
}

export interface SessionServiceOptions {
  config: Config;
  db: Kysely<Database>;
  store: SessionStore;
  /** Relays the billing facts each change records. */
  relay: OutboxRelay;
  /** This gateway process's id: requests through it are sightings of the user (presence). */
  gatewayId: string;
  notifier: UserNotifier;
  replies: ReplyGenerator;
  /** Voice/video rooms; without them such sessions cannot start (`clone_unavailable`). */
  rooms?: RoomHooks;
  /** Finds the passages of the clone's documents that match a question (none when absent). */
  retrieve?: (cloneId: string, question: string, signal: AbortSignal) => Promise<Passage[]>;
  logger: Logger;
  /**
   * Replies generating at once on this gateway; further ones wait in arrival order (default 256). Under overload,
   * replies queue instead of all streaming at once and starving the acknowledgements of new messages.
   */
  maxRepliesInFlight?: number;
  /** A reply's deltas are sent joined, at most one `message:delta` per this many ms (default 40). */
  deltaIntervalMs?: number;
}

/** Relays a gateway leaves running in the background at most (commit without awaitRelay). */
const MAX_BACKGROUND_RELAYS = 512;

/** Default of `SessionServiceOptions.maxRepliesInFlight`. */
export const DEFAULT_MAX_REPLIES_IN_FLIGHT = 256;

/** The highest per-minute rate the meter takes (100000 credits): keeps the Lua arithmetic exact in doubles. */
export const MAX_RATE_PER_MINUTE = 1_000_000_000n;


export class SessionService {
  private readonly config: Config;
  private readonly db: Kysely<Database>;
  private readonly store: SessionStore;
  private readonly relay: OutboxRelay;
  private readonly gatewayId: string;
  private readonly notifier: UserNotifier;
  private readonly replies: ReplyGenerator;
  private readonly logger: Logger;
  /** Replies being written, by session, so a pause or an end can cut them short and close() can wait. */
  private readonly inFlight = new Map<string, Set<{ controller: AbortController; task: Promise<void> }>>();
  private readonly replyTasks = new Set<Promise<void>>();
  /** Relays running in the background (commit without awaitRelay). */
  private readonly relays = new Set<Promise<void>>();
  private readonly retrieve: SessionServiceOptions['retrieve'];
  private readonly rooms: RoomHooks | undefined;
  private readonly replySlots: ReplySlots;
  private readonly cloneProfiles: CloneProfiles;
  private readonly deltaIntervalMs: number;

  constructor(options: SessionServiceOptions) {
    this.config = options.config;
    this.db = options.db;
    this.store = options.store;
    this.relay = options.relay;
    this.gatewayId = options.gatewayId;
    this.notifier = options.notifier;
    this.replies = options.replies;
    this.logger = options.logger;
    this.retrieve = options.retrieve;
    this.rooms = options.rooms;
    this.replySlots = new ReplySlots(options.maxRepliesInFlight ?? DEFAULT_MAX_REPLIES_IN_FLIGHT);
    this.cloneProfiles = new CloneProfiles(options.db);
    this.deltaIntervalMs = options.deltaIntervalMs ?? 40;
  }

  /** Replies generating now and replies waiting for a slot (ReplySlots). */
  get replyLoad(): { active: number; queued: number } {
    return { active: this.replySlots.active, queued: this.replySlots.queued };
  }

  async start(userId: string, payload: ClientPayload<'session:start'>): Promise<ClientResults['session:start']> {
    const clone = await this.db
      .selectFrom('clones')
      .select(['id', 'base_price', 'is_published', 'is_active'])
      .where('id', '=', payload.cloneId)
      .executeTakeFirst();
    if (!clone) throw new AppError('not_found', 'no such clone', { cloneId: payload.cloneId });
    if (!clone.is_published || !clone.is_active) {
      throw new AppError('clone_unavailable', 'this clone is not available', { cloneId: payload.cloneId });
    }
    const rate = parseMoney(clone.base_price);
    if (rate > MAX_RATE_PER_MINUTE) {
      throw new AppError('clone_unavailable', 'this clone\'s rate is above what the meter accepts', { cloneId: payload.cloneId });
    }
    const inRoom = payload.type !== 'chat';
    if (inRoom && !this.rooms) throw new AppError('clone_unavailable', 'voice and video are not available here');
    await refreshBalance(this.db, this.store, userId);
    const sessionId = randomUUID();
    if (inRoom) await this.rooms!.rooms.register(sessionId, userId);
    const outcome = await this.store.start({
      userId,
      sessionId,
      cloneId: clone.id,
      type: payload.type,
      rate,
      minStartMs: this.config.MIN_START_SECONDS * 1000,
      maxOpen: this.config.MAX_OPEN_SESSIONS,
    }, this.gatewayId);
    // What became due before the start is committed even when the start itself is refused.
    await this.commit(userId, outcome);
    assertScriptOk(outcome.code, { cloneId: clone.id, available: outcome.result.available });
    const session = this.wireSession(outcome, sessionId);
    if (!inRoom) return { session };
    return { session, livekit: await this.rooms!.rooms.userJoin(sessionId, userId, payload.type) };
  }

  /** A fresh room token for a voice/video session that is not over (a rejoin after the first token expired). */
  async roomToken(userId: string, sessionId: string): Promise<ClientResults['session:token']> {
    const live = await this.store.peek(userId, sessionId);
    if (!live) {
      await this.explainMissing(userId, sessionId, true);
      throw new AppError('not_found', 'no such session', { sessionId });
    }
    if (live.type === 'chat' || !this.rooms) throw new AppError('invalid_state', 'a chat session has no room', { sessionId });
    if (live.status === 'ended') throw new AppError('invalid_state', 'the session has ended', { sessionId, status: live.status });
    return { livekit: await this.rooms.rooms.userJoin(sessionId, userId, live.type) };
  }

  /**
   * A verified LiveKit webhook. Only the session owner's own participant moves the meter (the agent's does not);
   * a room whose session is over is closed again (someone joined it after the end).
   */
  async roomEvent(webhook: RoomWebhook): Promise<void> {
    if (!this.rooms) return;
    const sessionId = this.rooms.rooms.sessionIdOf(webhook.room);
    const userId = sessionId && (await this.rooms.rooms.ownerOf(sessionId));
    if (!sessionId || !userId) {
      this.logger.info({ room: webhook.room, event: webhook.event.kind }, 'webhook about a room that is not a live session');
      return;
    }
    if (webhook.event.kind !== 'finished' && webhook.identity !== userId) return;
    const outcome = await this.store.roomEvent(userId, sessionId, webhook.event);
    await this.commit(userId, outcome);
    const session = outcome.sessions.get(sessionId);
    if (!session) return;
    if (webhook.event.kind === 'joined' && outcome.result.ended === true && outcome.code === ScriptCode.ok) {
      await this.rooms.rooms.close(sessionId, userId);
    }
    await this.rooms.roomChanged(session);
  }

  async act(userId: string, sessionId: string, action: 'pause' | 'resume' | 'end'): Promise<WireSession> {
    // a reply cut short by the user's end is billed before the session's total is fixed; only the owner's end
    // (the session is in the caller's own live state) may cut it: another user's attempt is refused below
    if (action === 'end' && (await this.store.peek(userId, sessionId))) await this.stopReplies(sessionId);
    const outcome = await this.store.transition(userId, sessionId, action, 'user', this.gatewayId);
    await this.commit(userId, outcome);
    if (outcome.code === ScriptCode.notFound) await this.explainMissing(userId, sessionId, true);
    assertScriptOk(outcome.code, { sessionId, status: outcome.sessions.get(sessionId)?.status });
    return this.wireSession(outcome, sessionId);
  }

  async get(userId: string, sessionId: string): Promise<WireSession> {
    const outcome = await this.store.advance(userId, this.gatewayId, sessionId);
    await this.commit(userId, outcome);
    const live = outcome.sessions.get(sessionId);
    if (live) return toWireSession(live, outcome.now);
    return this.explainMissing(userId, sessionId, false);
  }

  /** A user message: from the user's socket (a sighting of the user), or an utterance from the room's voice agent. */
  async sendMessage(userId: string, payload: ClientPayload<'message:send'>, from: 'socket' | 'agent' = 'socket'): Promise<WireMessage> {
    return (await this.sendMessageWithReply(userId, payload, from)).message;
  }

  /** `sendMessage`, also telling the id the clone's reply streams under (none for a repeated message). */
  async sendMessageWithReply(userId: string, payload: ClientPayload<'message:send'>, from: 'socket' | 'agent'): Promise<{ message: WireMessage; replyId: string | null }> {
    const messageId = randomUUID();
    const sighting = from === 'socket' ? this.gatewayId : '';
    const outcome = await this.store.addMessage(userId, payload.sessionId, payload.clientMessageId, messageId, payload.content, sighting);
    const session = outcome.sessions.get(payload.sessionId);
    const stored = typeof outcome.result.message === 'string' ? parseStoredMessage(outcome.result.message) : undefined;
    // The message is in the outbox (Redis) with the change itself, so the ack does not wait for the queue: the relay
    // follows, and if it fails the outbox sweep queues the message (RELIABILITY: acknowledged means stored, once).
    await this.commit(userId, outcome, { awaitRelay: false });
    if (outcome.code === ScriptCode.notFound) await this.explainMissing(userId, payload.sessionId, true);
    assertScriptOk(outcome.code, { sessionId: payload.sessionId, status: session?.status });
    if (!stored || !session) throw new Error('message-add returned no message');
    const replyId = outcome.code === ScriptCode.ok ? randomUUID() : null;
    if (replyId) this.startReply(session, replyId);
    return { message: toWireMessage(stored), replyId };
  }

  /** What a client that was away missed: the session's messages after `afterMessageId`, replies included. */
  async history(userId: string, payload: ClientPayload<'session:history'>): Promise<WireMessage[]> {
    const live = await this.store.peek(userId, payload.sessionId);
    let messages: WireMessage[];
    if (live) {
      messages = (await this.store.allMessages(userId, payload.sessionId)).map(toWireMessage);
    } else {
      await this.explainMissing(userId, payload.sessionId, false);
      const rows = await this.db
        .selectFrom('messages')
        .selectAll()
        .where('session_id', '=', payload.sessionId)
        .orderBy('created_at')
        .orderBy('sender_type', 'desc')
        .execute();
      messages = rows.map((row) => ({
        id: row.id,
        sessionId: row.session_id,
        senderType: row.sender_type,
        content: row.content,
        tokensUsed: row.tokens_used,
        costIncrement: formatMoney(parseMoney(row.cost_increment)),
        createdAt: new Date(row.created_at).toISOString(),
      }));
    }
    const after = payload.afterMessageId ? messages.findIndex((m) => m.id === payload.afterMessageId) : -1;
    return messages.slice(after + 1);
  }

  async rate(userId: string, payload: ClientPayload<'session:rate'>): Promise<void> {
    const row = await this.db
      .selectFrom('sessions')
      .select(['user_id', 'status', 'clone_id', 'user_rating'])
      .where('id', '=', payload.sessionId)
      .executeTakeFirst();
    if (!row) {
      const live = await this.store.peek(userId, payload.sessionId);
      if (live) throw new AppError('invalid_state', 'the session is not recorded yet; retry shortly', { sessionId: payload.sessionId });
      throw new AppError('not_found', 'no such session', { sessionId: payload.sessionId });
    }
    if (row.user_id !== userId) throw new AppError('forbidden', 'not your session', { sessionId: payload.sessionId });
    const live = await this.store.peek(userId, payload.sessionId);
    const ended = row.status === 'ended' || live?.status === 'ended';
    if (!ended) throw new AppError('invalid_state', 'only an ended session can be rated', { sessionId: payload.sessionId });
    const rated = await this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('sessions')
        .set({ user_rating: payload.rating, user_feedback: payload.feedback ?? null, updated_at: new Date() })
        .where('id', '=', payload.sessionId)
        .where('user_rating', 'is', null)
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) return false;
      await trx
        .updateTable('clones')
        .set({
          // recomputed from every rating (numeric, in Postgres), so rounding never accumulates
          average_rating: sql<string>`(select round(avg(user_rating), 2) from sessions where clone_id = ${row.clone_id} and user_rating is not null)`,
          total_ratings: sql<number>`(select count(*) from sessions where clone_id = ${row.clone_id} and user_rating is not null)`,
          updated_at: new Date(),
        })
        .where('id', '=', row.clone_id)
        .execute();
      return true;
    });
    if (!rated) throw new AppError('invalid_state', 'this session was already rated', { sessionId: payload.sessionId });
  }

  /**
   * Applies what is due for the user (the scheduler's entry, and a connecting socket's with `sighted`, which
   * records that this gateway sees the user); returns the outcome. The due scheduler passes `scheduleNext` false:
   * it moves the user's due entry itself (reschedule-due.lua).
   */
  async advance(userId: string, sighted = false, scheduleNext = true): Promise<Outcome> {
    const outcome = await this.store.advance(userId, sighted ? this.gatewayId : '');
    await this.commit(userId, outcome, { scheduleNext, awaitRelay: false });
    return outcome;
  }

  /**
   * One meter tick for a user with sockets on this gateway: brings the state up to now (a sighting of the user)
   * and sends `meter:tick` for each active session to this gateway's sockets of the user, with the figures the
   * script read at its `now`.
   */
  async tick(userId: string): Promise<boolean> {
    const outcome = await this.advance(userId, true);
    const creditsRemaining = formatMoney(outcome.available > 0n ? outcome.available : 0n);
    let active = false;
    for (const session of outcome.open) {
      if (session.status !== 'active') continue;
      active = true;
      this.notifier.emitLocal(userId, 'meter:tick', {
        sessionId: session.id,
        activeSeconds: Math.floor(session.activeMs / 1000),
        cost: formatMoney(session.cost),
        creditsRemaining,
        ratePerMinute: formatMoney(session.rate),
      });
    }
    return active;
  }

  /** Keeps this gateway's sighting of a connected user fresh, apart from the (slower, heavier) meter tick. */
  heartbeat(userId: string): Promise<boolean> {
    return this.store.refreshPresence(userId, this.gatewayId);
  }

  /** The user's last socket on this gateway went away: their active chats pause unless another gateway sees them. */
  async leave(userId: string): Promise<void> {
    await this.commit(userId, await this.store.presenceLeave(userId, this.gatewayId));
  }

  /** Lets replies in flight finish for up to `drainMs` (they are stored and billed), then stops the rest. */
  async close(drainMs = 0): Promise<void> {
    const all = Promise.allSettled([...this.replyTasks]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    for (const entries of this.inFlight.values()) for (const entry of entries) entry.controller.abort();
    await all;
    await Promise.all([...this.relays]);
  }

  /**
   * What follows every script: its billing facts relayed from the outbox to the queue, its next due instant scheduled
   * (when the schedule does not hold it or an earlier one yet), and the user told. The facts are safe in the outbox
   * already (written by the same script as the change), so telling never waits for the queue. With `awaitRelay`
   * (default) the caller waits for the relay too, and fails if the queue refused; without, a failed relay is logged
   * and its facts wait in the outbox for the sweep (meter ticks, due events, messages and replies, whose
   * acknowledgement then costs no queue round trip). `scheduleNext: false` leaves the schedule to the caller.
   */
  private async commit(userId: string, outcome: Outcome, options: { scheduleNext?: boolean; awaitRelay?: boolean } = {}): Promise<void> {
    const relaying = this.relay.relay(userId, outcome.outbox);
    const scheduling =
      options.scheduleNext !== false && outcome.schedule && outcome.nextDue !== null ? this.store.scheduleDue(userId, outcome.nextDue) : undefined;
    // a queue that falls behind is felt: past MAX_BACKGROUND_RELAYS unfinished relays, callers wait for theirs again
    const background = options.awaitRelay === false && this.relays.size < MAX_BACKGROUND_RELAYS;
    if (background) this.relayInBackground(userId, relaying);
    const done = Promise.allSettled([background ? undefined : relaying, scheduling]);
    for (const change of outcome.changes) {
      if (change.status !== 'active' && this.inFlight.has(change.sessionId)) void this.stopReplies(change.sessionId);
    }
    const notified = new Set<string>();
    for (const change of outcome.changes) {
      const session = outcome.sessions.get(change.sessionId);
      if (!session || notified.has(session.id)) continue;
      notified.add(session.id);
      const wire = toWireSession(session, outcome.now);
      this.tell(session, 'session:updated', wire);
      if (session.status === 'ended') {
        this.tell(session, 'session:ended', { sessionId: session.id, reason: session.reason, session: wire });
        // ended from our side (user, credits, idle): the user leaves the room now, not when their token expires
        if (session.type !== 'chat' && this.rooms) {
          if (session.reason !== 'room_finished') void this.rooms.rooms.close(session.id, userId);
          void this.rooms.roomChanged(session).catch((error: unknown) => this.logger.warn({ err: error, sessionId: session.id }, 'room bookkeeping failed'));
        }
      }
    }
    await this.warnLowBalance(userId, outcome);
    for (const result of await done) if (result.status === 'rejected') throw result.reason;
  }

  /** A relay nobody waits for: close() waits for it; its failure is logged (the facts stay in the outbox). */
  private relayInBackground(userId: string, relaying: Promise<void>): void {
    const tracked = relaying
      .catch((error: unknown) => this.logger.error({ err: error, userId }, 'relaying billing facts failed; left to the outbox sweep'))
      .finally(() => this.relays.delete(tracked));
    this.relays.add(tracked);
  }

  private async warnLowBalance(userId: string, outcome: Outcome): Promise<void> {
    const { open, available } = outcome;
    const left = secondsLeft(available, open);
    if (left === null || left >= this.config.LOW_BALANCE_SECONDS) return;
    for (const session of open) {
      if (session.status !== 'active' || session.lowSent) continue;
      if (await this.store.markLowBalance(userId, session.id)) {
        this.notifier.emit(userId, 'credits:low', {
          sessionId: session.id,
          creditsRemaining: formatMoney(available > 0n ? available : 0n),
          secondsLeft: left,
        });
      }
    }
  }

  /** Tells the user's sockets, and the voice agent of a voice/video session, about their session. */
  private tell<E extends keyof ServerToAgentEvents & keyof ServerToClientEvents>(
    session: Pick<LiveSession, 'id' | 'userId' | 'type'>,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void {
    this.notifier.emit(session.userId, event, ...args);
    if (session.type !== 'chat') this.notifier.emitAgent(session.id, event, ...(args as Parameters<ServerToAgentEvents[E]>));
  }

  /** Cuts a session's reply short on the agent's word (the user spoke over the clone); billed as produced. */
  async interrupt(sessionId: string): Promise<void> {
    await this.stopReplies(sessionId);
  }

  private wireSession(outcome: Outcome, sessionId: string): WireSession {
    const session = outcome.sessions.get(sessionId);
    if (!session) throw new Error(`session ${sessionId} missing from the script's answer`);
    return toWireSession(session, outcome.now);
  }

  /**
   * The session is not in the user's live state: tell apart someone else's session (forbidden), an ended one
   * whose live state has expired (invalid_state for actions; returned as settled for reads) and none at all.
   */
  private async explainMissing(userId: string, sessionId: string, acting: boolean): Promise<WireSession> {
    const row = await this.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirst();
    if (!row) throw new AppError('not_found', 'no such session', { sessionId });
    if (row.user_id !== userId) throw new AppError('forbidden', 'not your session', { sessionId });
    if (acting) throw new AppError('invalid_state', `not allowed while the session is ${row.status}`, { sessionId, status: row.status });
    const activeMs = Number(row.active_ms);
    return {
      id: row.id,
      userId: row.user_id,
      cloneId: row.clone_id,
      type: row.session_type,
      status: row.status,
      startTime: new Date(row.start_time).toISOString(),
      endTime: row.end_time ? row.end_time.toISOString() : null,
      activeSeconds: Math.floor(activeMs / 1000),
      ratePerMinute: formatMoney(parseMoney(row.rate_per_minute)),
      cost: formatMoney(parseMoney(row.total_cost)),
      messageCount: row.message_count,
    };
  }

  private startReply(session: LiveSession, messageId: string): void {
    const controller = new AbortController();
    const task = this.writeReplyInTurn(session, messageId, controller.signal)
      .catch((error: unknown) => this.logger.error({ err: error, sessionId: session.id }, 'reply failed'))
      .finally(() => {
        this.inFlight.get(session.id)?.delete(entry);
        this.replyTasks.delete(task);
      });
    const entry = { controller, task };
    const forSession = this.inFlight.get(session.id) ?? new Set();
    forSession.add(entry);
    this.inFlight.set(session.id, forSession);
    this.replyTasks.add(task);
  }

  /** Cuts the session's replies short (they are stored and billed for what was produced) and waits for them. */
  private async stopReplies(sessionId: string): Promise<void> {
    const entries = [...(this.inFlight.get(sessionId) ?? [])];
    for (const entry of entries) entry.controller.abort();
    await Promise.allSettled(entries.map((entry) => entry.task));
  }

  /**
   * Writes the reply once one of the gateway's reply slots is free (ReplySlots). A reply stopped while it still
   * waited (a pause, an end, shutdown) produced nothing: nothing is stored or billed.
   */
  private async writeReplyInTurn(session: LiveSession, messageId: string, signal: AbortSignal): Promise<void> {
    if (!(await this.replySlots.acquire(signal))) return;
    try {
      await this.writeReply(session, messageId, signal);
    } finally {
      this.replySlots.release();
    }
  }

  private async writeReply(session: LiveSession, messageId: string, signal: AbortSignal): Promise<void> {
    const { userId, id: sessionId } = session;
    let produced = '';
    let request: ReplyRequest | undefined;
    const deltas = new DeltaCoalescer((delta) => this.tell(session, 'message:delta', { sessionId, messageId, delta }), this.deltaIntervalMs);
    try {
      const clone = await this.cloneProfiles.get(session.cloneId);
      const history = await this.store.recentMessages(userId, sessionId, this.config.CONTEXT_MESSAGES);
      const question = history.findLast((m) => m.senderType === 'user')?.content ?? '';
      const passages = this.retrieve && question ? await this.retrieve(session.cloneId, question, signal) : [];
      request = {
        clone,
        passages,
        history: history.map((m) => ({ senderType: m.senderType, content: m.content })),
        signal,
      };
      const reply = await this.replies.generate(request, (delta) => {
        produced += delta;
        deltas.push(delta);
      });
      deltas.flush();
      await this.storeReply(session, messageId, reply.content, reply.tokensUsed, passages);
    } catch (error) {
      // what was streamed reaches the clients before the reply's completion or failure
      deltas.flush();
      if (signal.aborted && request) {
        // cut short (paused, ended, client gone, shutting down): billed for the tokens actually produced
        const tokens = countPromptTokens(buildChatMessages(request)) + countTokens(produced);
        await this.storeReply(session, messageId, produced, tokens, request.passages ?? []);
        return;
      }
      if (signal.aborted) return;
      this.tell(session, 'message:failed', { sessionId, messageId, error: toWireError(error) });
      throw error;
    }
  }

  private async storeReply(session: LiveSession, messageId: string, content: string, tokensUsed: number, passages: Passage[]): Promise<void> {
    const { userId, id: sessionId } = session;
    const citations = passages.map((p) => ({ documentId: p.documentId, title: p.title, chunkIndex: p.chunkIndex }));
    const cost = replyCost(tokensUsed, this.config.aiPricePer1kTokens);
    const outcome = await this.store.addReply(userId, sessionId, { messageId, content, tokensUsed, cost, citations });
    const stored = typeof outcome.result.message === 'string' ? parseStoredMessage(outcome.result.message) : undefined;
    if (!stored) throw new Error('reply-add returned no message');
    await this.commit(userId, outcome, { awaitRelay: false });
    this.tell(session, 'message:completed', { sessionId, message: toWireMessage(stored) });
  }
}
