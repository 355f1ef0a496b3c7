/**
 * What the gateway does with sessions, independent of the transport: start, pause, resume, end, read, message,
 * rate; advancing users whose events are due; and the meter ticks. Every change goes through a live-state script
 * (SessionStore), then the OutcomePublisher relays its billing facts, schedules the user's next due instant and
 * tells the user's sockets; the clone's replies run in the ReplyRunner; a session no longer live is read from
 * Postgres (SessionArchive). Handlers throw AppError; the transport turns errors into answers.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import type { ClientPayload, ClientResults, WireMessage, WireSession } from '#shared/contract/socket-events.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { formatMoney, type Units } from '#shared/money/money.ts';
import { discountedRate } from '#shared/money/pricing.ts';
import { refreshBalance } from '#shared/live-state/balance-refresh.ts';
import { readingAt, toWireSession, type LiveSession, type MeterReading } from '#shared/live-state/live-session.ts';
import { assertScriptOk, ScriptCode } from '#shared/live-state/script-codes.ts';
import { parseStoredMessage, toWireMessage, type Outcome, type SessionStore } from '#shared/live-state/session-store.ts';
import type { RoomWebhook } from '../livekit/room-webhooks.ts';
import { agentIdentity } from '../livekit/voice-rooms.ts';
import { MeterReadings } from '../meter/meter-readings.ts';
import type { OutboxRelay } from '../outbox/outbox-relay.ts';
import { CloneProfiles } from '../replies/clone-profiles.ts';
import type { Passage, ReplyGenerator } from '../replies/reply-generator.ts';
import { ReplyRunner } from '../replies/reply-runner.ts';
import { OutcomePublisher, type RoomHooks, type UserNotifier } from './outcome-publisher.ts';
import { rateSession } from './rate-session.ts';
import { SessionArchive } from './session-archive.ts';

export type { RoomHooks, UserNotifier };

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
  /** Told each LiveKit webhook's clock skew, and whether it was applied at its receipt (beyond WEBHOOK_SKEW_MS). */
  onWebhookSkew?: (skewMs: number, appliedAtReceipt: boolean) => void;
}

/** Default of `SessionServiceOptions.maxRepliesInFlight`. */
const DEFAULT_MAX_REPLIES_IN_FLIGHT = 256;

/** The highest per-minute rate the meter takes (100000 credits): keeps the Lua arithmetic exact in doubles. */
const MAX_RATE_PER_MINUTE = 1_000_000_000n;
/**
 * A meter reading older than this is read afresh by the next tick even when the account's revision has not moved:
 * it bounds what a reading could miss without a revision (live state lost with a Redis that came back empty).
 */
const READING_MAX_AGE_MS = 30_000;

export class SessionService {
  private readonly config: Config;
  private readonly db: Kysely<Database>;
  private readonly store: SessionStore;
  private readonly gatewayId: string;
  private readonly notifier: UserNotifier;
  private readonly logger: Logger;
  private readonly rooms: RoomHooks | undefined;
  private readonly publisher: OutcomePublisher;
  private readonly replyRunner: ReplyRunner;
  private readonly archive: SessionArchive;
  /** The last meter reading of each user ticked here (kept current by every script answer that passes). */
  private readonly readings = new MeterReadings();
  private readonly clones: CloneProfiles;
  private readonly onWebhookSkew: SessionServiceOptions['onWebhookSkew'];

  constructor(options: SessionServiceOptions) {
    this.config = options.config;
    this.onWebhookSkew = options.onWebhookSkew;
    this.db = options.db;
    this.store = options.store;
    this.gatewayId = options.gatewayId;
    this.notifier = options.notifier;
    this.logger = options.logger;
    this.rooms = options.rooms;
    this.archive = new SessionArchive(options.db);
    this.clones = new CloneProfiles(options.db);
    this.publisher = new OutcomePublisher({
      store: options.store,
      relay: options.relay,
      notifier: options.notifier,
      rooms: options.rooms,
      lowBalanceSeconds: options.config.LOW_BALANCE_SECONDS,
      onLeftActive: (sessionId) => void this.replyRunner.stop(sessionId),
      readings: this.readings,
      logger: options.logger,
    });
    this.replyRunner = new ReplyRunner({
      config: options.config,
      store: options.store,
      publisher: this.publisher,
      replies: options.replies,
      cloneProfiles: this.clones,
      retrieve: options.retrieve,
      maxRepliesInFlight: options.maxRepliesInFlight ?? DEFAULT_MAX_REPLIES_IN_FLIGHT,
      deltaIntervalMs: options.deltaIntervalMs ?? 40,
      logger: options.logger,
    });
  }

  /** Replies generating now and replies waiting for a slot. */
  get replyLoad(): { active: number; queued: number } {
    return this.replyRunner.load;
  }

  async start(userId: string, payload: ClientPayload<'session:start'>): Promise<ClientResults['session:start']> {
    // the clone's offer (cached briefly) and the user's balance and tier (one read of Postgres) side by side
    const [clone, { tier }] = await Promise.all([this.clones.offer(payload.cloneId), refreshBalance(this.db, this.store, userId)]);
    if (!clone.available) {
      throw new AppError('clone_unavailable', 'this clone is not available', { cloneId: payload.cloneId });
    }
    // the user's tier discounts the clone's price; the session keeps this rate whatever changes after
    const rate = tier === 'free' ? clone.ratePerMinute : discountedRate(clone.ratePerMinute, this.config.subscriptionPlans.get(tier)?.discount);
    if (rate > MAX_RATE_PER_MINUTE) {
      throw new AppError('clone_unavailable', 'this clone\'s rate is above what the meter accepts', { cloneId: payload.cloneId });
    }
    const inRoom = payload.type !== 'chat';
    if (inRoom && !this.rooms) throw new AppError('clone_unavailable', 'voice and video are not available here');
    const sessionId = randomUUID();
    if (inRoom) await this.rooms!.rooms.register(sessionId, userId);
    const outcome = await this.store.start({
      userId,
      sessionId,
      cloneId: clone.cloneId,
      type: payload.type,
      rate,
      minStartMs: this.config.MIN_START_SECONDS * 1000,
      maxOpen: this.config.MAX_OPEN_SESSIONS,
    }, this.gatewayId);
    // What became due before the start is committed even when the start itself is refused. The start's facts are in
    // the outbox with the change, so its answer does not wait for the queue either (the relay may linger and share).
    await this.publisher.relayScheduleAndNotify(userId, outcome, { awaitRelay: false });
    assertScriptOk(outcome.code, { cloneId: clone.cloneId, available: outcome.result.available });
    const session = this.wireSession(outcome, sessionId);
    if (!inRoom) return { session };
    return { session, livekit: await this.rooms!.rooms.userJoin(sessionId, userId, payload.type) };
  }

  /** A fresh room token for a voice/video session that is not over (a rejoin after the first token expired). */
  async roomToken(userId: string, sessionId: string): Promise<ClientResults['session:token']> {
    const live = await this.store.peek(userId, sessionId);
    if (!live) {
      await this.archive.session(userId, sessionId, true);
      throw new AppError('not_found', 'no such session', { sessionId });
    }
    if (live.type === 'chat' || !this.rooms) throw new AppError('invalid_state', 'a chat session has no room', { sessionId });
    if (live.status === 'ended') throw new AppError('invalid_state', 'the session has ended', { sessionId, status: live.status });
    return { livekit: await this.rooms.rooms.userJoin(sessionId, userId, live.type) };
  }

  /**
   * A room event: a verified LiveKit webhook, or (`proved`) what a RoomService check found, at an instant on Redis's
   * clock (no skew bound applies to it). The session's user and the clone's agent move the meter; a room whose
   * session is over is closed again (someone joined it after the end).
   */
  async roomEvent(webhook: RoomWebhook, proved = false): Promise<void> {
    if (!this.rooms) return;
    const sessionId = this.rooms.rooms.sessionIdOf(webhook.room);
    const userId = sessionId && (await this.rooms.rooms.ownerOf(sessionId));
    if (!sessionId || !userId) {
      this.logger.info({ room: webhook.room, event: webhook.event.kind }, 'webhook about a room that is not a live session');
      return;
    }
    // the session's user and the clone's agent move the meter; anyone else in the room does not
    const role = webhook.identity === userId ? 'user' : webhook.identity === agentIdentity(sessionId) ? 'agent' : undefined;
    if (webhook.event.kind !== 'finished' && !role) return;
    const outcome = await this.store.roomEvent(userId, sessionId, { ...webhook.event, role: role ?? 'user' }, proved);
    const skewMs = Number(outcome.result.skewMs);
    if (!proved && Number.isFinite(skewMs)) {
      const atReceipt = outcome.result.skewed === true;
      this.onWebhookSkew?.(skewMs, atReceipt);
      if (atReceipt) {
        this.logger.warn({ room: webhook.room, event: webhook.event.kind, eventId: webhook.event.id, skewMs }, 'LiveKit webhook instant beyond WEBHOOK_SKEW_MS of Redis time: applied at its receipt');
      }
    }
    await this.publisher.relayScheduleAndNotify(userId, outcome);
    const session = outcome.sessions.get(sessionId);
    if (!session) return;
    // who is in the room changed without a change of status (the user came in and waits for the agent, the agent
    // came to a held session): the user is shown it all the same
    if (outcome.code === ScriptCode.ok && outcome.result.roomChanged === true) this.tellUnchanged(session, outcome);
    if (webhook.event.kind === 'joined' && outcome.result.ended === true && outcome.code === ScriptCode.ok) {
      await this.rooms.rooms.close(sessionId, userId);
    }
    await this.rooms.roomChanged(session);
  }

  /** `session:updated` for a live session the outcome changed without a change of status (those were told already). */
  private tellUnchanged(session: LiveSession, outcome: Outcome): void {
    if (session.status === 'ended' || outcome.changes.some((change) => change.sessionId === session.id)) return;
    this.publisher.tell(session, 'session:updated', toWireSession(session, outcome.now));
  }

  async act(userId: string, sessionId: string, action: 'pause' | 'resume' | 'end'): Promise<WireSession> {
    // a reply cut short by the user's end is billed before the session's total is fixed; only the owner's end
    // (the session is in the caller's own live state) may cut it: another user's attempt is refused below
    if (action === 'end' && (await this.store.peek(userId, sessionId))) await this.replyRunner.stop(sessionId);
    const outcome = await this.store.transition(userId, sessionId, action, 'user', this.gatewayId);
    await this.publisher.relayScheduleAndNotify(userId, outcome, { awaitRelay: false });
    // a call's hold set or lifted while it stays paused (waiting for someone): the user's other devices learn it too
    const acted = outcome.sessions.get(sessionId);
    if (outcome.code === ScriptCode.ok && acted && acted.type !== 'chat' && action !== 'end') this.tellUnchanged(acted, outcome);
    if (outcome.code === ScriptCode.notFound) await this.archive.session(userId, sessionId, true);
    assertScriptOk(outcome.code, { sessionId, status: outcome.sessions.get(sessionId)?.status, reason: outcome.result.reason });
    return this.wireSession(outcome, sessionId);
  }

  async get(userId: string, sessionId: string): Promise<WireSession> {
    const outcome = await this.store.advance(userId, this.gatewayId, sessionId);
    await this.publisher.relayScheduleAndNotify(userId, outcome);
    const live = outcome.sessions.get(sessionId);
    if (live) return toWireSession(live, outcome.now);
    return this.archive.session(userId, sessionId, false);
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
    await this.publisher.relayScheduleAndNotify(userId, outcome, { awaitRelay: false });
    if (outcome.code === ScriptCode.notFound) await this.archive.session(userId, payload.sessionId, true);
    assertScriptOk(outcome.code, { sessionId: payload.sessionId, status: session?.status, reason: outcome.result.reason });
    if (!stored || !session) throw new Error('message-add returned no message');
    const replyId = outcome.code === ScriptCode.ok ? randomUUID() : null;
    const message = toWireMessage(stored);
    // the user's own words in a call reach the user only this way (a typed message comes back as its ack), before
    // the answer starts streaming: the widget's transcript shows both sides, in order
    if (from === 'agent' && replyId) this.notifier.emit(userId, 'message:completed', { sessionId: payload.sessionId, message });
    if (replyId) this.replyRunner.start(session, replyId);
    return { message, replyId };
  }

  /** What a client that was away missed: the session's messages after `afterMessageId`, replies included. */
  async history(userId: string, payload: ClientPayload<'session:history'>): Promise<WireMessage[]> {
    const live = await this.store.peek(userId, payload.sessionId);
    let messages: WireMessage[];
    if (live) {
      messages = (await this.store.allMessages(userId, payload.sessionId)).map(toWireMessage);
    } else {
      await this.archive.session(userId, payload.sessionId, false);
      messages = await this.archive.messages(payload.sessionId);
    }
    const after = payload.afterMessageId ? messages.findIndex((m) => m.id === payload.afterMessageId) : -1;
    return messages.slice(after + 1);
  }

  rate(userId: string, payload: ClientPayload<'session:rate'>): Promise<void> {
    return rateSession(this.db, this.store, userId, payload);
  }

  /**
   * Applies what is due for the user (a connecting socket's with `sighted`, which records that this gateway sees
   * the user); returns the outcome.
   */
  async advance(userId: string, sighted = false): Promise<Outcome> {
    const outcome = await this.store.advance(userId, sighted ? this.gatewayId : '');
    await this.publisher.relayScheduleAndNotify(userId, outcome, { awaitRelay: false });
    return outcome;
  }

  /**
   * The due scheduler's entry: applies what is due for the user and tells whom it concerns. The answer reads the
   * open sessions only when something was due (most due instants are presence checks that find the user still
   * seen); the scheduler moves the user's due entry itself (reschedule-due.lua), so nothing is scheduled here.
   */
  async applyDue(userId: string): Promise<Outcome> {
    const outcome = await this.store.advance(userId, '', '', true);
    await this.publisher.relayScheduleAndNotify(userId, outcome, { scheduleNext: false, awaitRelay: false });
    return outcome;
  }

  /**
   * One meter tick for a user with sockets on this gateway: sends `meter:tick` for each active session to this
   * gateway's sockets of the user, and `credits:low` when it is time. While the account's revision is the one of
   * the reading held (nothing changed since some script read the user's open sessions) and no event is due before
   * now, the figures are that reading projected to now, at the cost of one HGET; otherwise (or once the reading is
   * READING_MAX_AGE_MS old) the state is brought up to now by a script, as every tick did before. Billing never
   * depends on a tick: due events are the due scheduler's, presence is kept by the heartbeat.
   */
  async tick(userId: string): Promise<boolean> {
    const held = this.readings.projectable(userId, Date.now(), READING_MAX_AGE_MS);
    if (held && (await this.store.revision(userId)) === held.reading.rev) {
      // a newer answer may have arrived meanwhile (same revision or not, it is at least as current)
      const { reading, elapsedMs } = this.readings.projectable(userId, Date.now(), READING_MAX_AGE_MS) ?? held;
      const { open, available } = readingAt(reading.open, reading.budget, elapsedMs);
      const active = this.showMeter(userId, open, available);
      await this.publisher.warnLowBalance(userId, available, open);
      return active;
    }
    const outcome = await this.advance(userId, true);
    this.readings.follow(userId, outcome);
    return this.showMeter(userId, outcome.open, outcome.available);
  }

  /** The user is no longer ticked here: their reading goes. */
  forget(userId: string): void {
    this.readings.forget(userId);
  }

  /** Sends `meter:tick` for each active session of `open`; whether there was any. */
  private showMeter(userId: string, open: readonly MeterReading[], available: Units): boolean {
    const creditsRemaining = formatMoney(available > 0n ? available : 0n);
    let active = false;
    for (const session of open) {
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
    await this.publisher.relayScheduleAndNotify(userId, await this.store.presenceLeave(userId, this.gatewayId));
  }

  /** Cuts a session's reply short on the agent's word (the user spoke over the clone); billed as produced. */
  /** Someone spoke in the session's room (told by its agent): not idle; a silence pause lifts. */
  async voiceActivity(userId: string, sessionId: string): Promise<void> {
    const outcome = await this.store.voiceActivity(userId, sessionId);
    await this.publisher.relayScheduleAndNotify(userId, outcome);
    const session = outcome.sessions.get(sessionId);
    if (session && this.rooms) await this.rooms.roomChanged(session);
  }

  async interrupt(sessionId: string): Promise<void> {
    await this.replyRunner.stop(sessionId);
  }

  /** Resolves when the relays running in the background have finished (queued, or left in the outbox). */
  relaysSettled(): Promise<void> {
    return this.publisher.close();
  }

  /** Lets replies in flight finish for up to `drainMs` (they are stored and billed), then stops the rest. */
  async close(drainMs = 0): Promise<void> {
    await this.replyRunner.close(drainMs);
    await this.publisher.close();
  }

  private wireSession(outcome: Outcome, sessionId: string): WireSession {
    const session = outcome.sessions.get(sessionId);
    if (!session) throw new Error(`session ${sessionId} missing from the script's answer`);
    return toWireSession(session, outcome.now);
  }
}
