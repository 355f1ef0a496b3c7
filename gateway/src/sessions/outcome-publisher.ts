/**
 * `OutcomePublisher`: what follows every live-state script (`relayScheduleAndNotify`) — its billing facts relayed
 * from the outbox to the queue, the user's next due instant scheduled, the user's sockets (and a voice session's
 * agent) told, a room closed when its session ended from our side, `credits:low` sent once, and replies of a session
 * that stopped being active cut short. The facts are safe in the outbox already (written by the same script as the
 * change), so telling never waits for the queue.
 */
import type { Logger } from 'pino';
import type { ServerToAgentEvents } from '#shared/contract/agent-events.ts';
import type { ServerToClientEvents } from '#shared/contract/socket-events.ts';
import { formatMoney } from '#shared/money/money.ts';
import { secondsLeft, toWireSession, type LiveSession, type MeterReading } from '#shared/live-state/live-session.ts';
import type { Units } from '#shared/money/money.ts';
import type { Outcome, SessionStore } from '#shared/live-state/session-store.ts';
import type { OutboxRelay } from '../outbox/outbox-relay.ts';
import type { VoiceRooms } from '../livekit/voice-rooms.ts';
import type { MeterReadings } from '../meter/meter-readings.ts';

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

export interface OutcomePublisherOptions {
  store: SessionStore;
  /** Relays the billing facts each change records. */
  relay: OutboxRelay;
  notifier: UserNotifier;
  /** Voice/video rooms, when this gateway serves them. */
  rooms: RoomHooks | undefined;
  /** `credits:low` is sent once when less time than this is left (config LOW_BALANCE_SECONDS). */
  lowBalanceSeconds: number;
  /** Told of each session a change left other than active (its replies in flight stop). */
  onLeftActive: (sessionId: string) => void;
  /** Meter readings of the users ticked here: each answer replaces the user's reading. */
  readings?: MeterReadings;
  logger: Logger;
}

export interface PublishOptions {
  /** Default true; false leaves the user's due schedule to the caller (the due scheduler moves it itself). */
  scheduleNext?: boolean;
  /**
   * Default true: the caller waits for the relay and fails if the queue refused. False: a failed relay is logged and
   * its facts wait in the outbox for the sweep (due events, messages, replies, starts and the user's pauses, resumes
   * and ends, whose acknowledgement then costs no queue round trip: acknowledged means in the outbox).
   */
  awaitRelay?: boolean;
}

/**
 * Relays a gateway leaves running in the background at most (publishing without awaitRelay). Each lingers up to
 * RELAY_LINGER_MS (200 ms), so ~1,000 relays a second (500 messages with their replies) keep ~200 in flight with the
 * queue keeping up; the cap is there for a queue that does not.
 */
const MAX_BACKGROUND_RELAYS = 2_048;

export class OutcomePublisher {
  /** Relays running in the background. */
  private readonly relays = new Set<Promise<void>>();

  constructor(private readonly options: OutcomePublisherOptions) {}

  async relayScheduleAndNotify(userId: string, outcome: Outcome, options: PublishOptions = {}): Promise<void> {
    const { relay, store, rooms, logger } = this.options;
    this.options.readings?.record(userId, outcome);
    // a queue that falls behind is felt: past MAX_BACKGROUND_RELAYS unfinished relays, callers wait for theirs again
    const background = options.awaitRelay === false && this.relays.size < MAX_BACKGROUND_RELAYS;
    // a relay nobody waits for may linger to share its queue write (the facts are safe in the outbox meanwhile); one
    // its caller waits for goes at once
    const relaying = relay.relay(userId, outcome.outbox, { urgent: !background });
    const scheduling =
      options.scheduleNext !== false && outcome.schedule && outcome.nextDue !== null ? store.scheduleDue(userId, outcome.nextDue) : undefined;
    if (background) this.relayInBackground(userId, relaying);
    const done = Promise.allSettled([background ? undefined : relaying, scheduling]);
    for (const change of outcome.changes) if (change.status !== 'active') this.options.onLeftActive(change.sessionId);
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
        if (session.type !== 'chat' && rooms) {
          if (session.reason !== 'room_finished') void rooms.rooms.close(session.id, userId);
          void rooms.roomChanged(session).catch((error: unknown) => logger.warn({ err: error, sessionId: session.id }, 'room bookkeeping failed'));
        }
      }
    }
    await this.warnLowBalance(userId, outcome.available, outcome.open);
    for (const result of await done) if (result.status === 'rejected') throw result.reason;
  }

  /** Tells the user's sockets, and the voice agent of a voice/video session, about their session. */
  tell<E extends keyof ServerToAgentEvents & keyof ServerToClientEvents>(
    session: Pick<LiveSession, 'id' | 'userId' | 'type'>,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void {
    this.options.notifier.emit(session.userId, event, ...args);
    if (session.type !== 'chat') this.options.notifier.emitAgent(session.id, event, ...(args as Parameters<ServerToAgentEvents[E]>));
  }

  /** Waits for the relays still running in the background. */
  async close(): Promise<void> {
    await Promise.all([...this.relays]);
  }

  /** A relay nobody waits for: close() waits for it; its failure is logged (the facts stay in the outbox). */
  private relayInBackground(userId: string, relaying: Promise<void>): void {
    const tracked = relaying
      .catch((error: unknown) => this.options.logger.error({ err: error, userId }, 'relaying billing facts failed; left to the outbox sweep'))
      .finally(() => this.relays.delete(tracked));
    this.relays.add(tracked);
  }

  /** Sends `credits:low` once per session when less than LOW_BALANCE_SECONDS are left (a script's or a projected reading). */
  async warnLowBalance(userId: string, available: Units, open: readonly MeterReading[]): Promise<void> {
    const left = secondsLeft(available, open);
    if (left === null || left >= this.options.lowBalanceSeconds) return;
    for (const session of open) {
      if (session.status !== 'active' || session.lowSent) continue;
      const first = await this.options.store.markLowBalance(userId, session.id);
      this.options.readings?.noteLowSent(userId, session.id);
      if (first) {
        this.options.notifier.emit(userId, 'credits:low', {
          sessionId: session.id,
          creditsRemaining: formatMoney(available > 0n ? available : 0n),
          secondsLeft: left,
        });
      }
    }
  }
}
