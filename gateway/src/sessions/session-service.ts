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
import type { ReplyGenerator } from '../replies/reply-generator.ts';
import {
  availableCredits,
  costAt,
  durationOf,
  secondsLeft,
  toWireSession,
  activeMsAt,
  type LiveSession,
} from '../meter/live-session.ts';
import { assertScriptOk, ScriptCode } from './script-codes.ts';
import { refreshBalance } from './balance-refresh.ts';
import { parseStoredMessage, toWireMessage, type Outcome, type SessionStore, type StoredMessage } from './session-store.ts';

/** A billing job ready to queue, with its deterministic id. */
export interface BillingJob<N extends BillingJobName = BillingJobName> {
  name: N;
  data: BillingJobData<N>;
  jobId: string;
}

/** Where billing jobs go (a BullMQ queue in production and tests). */
export interface BillingJobSink {
  addJobs(jobs: BillingJob[]): Promise<void>;
}

/** Sends an event to every socket of a user, on any gateway process. */
export interface UserNotifier {
  emit<E extends keyof ServerToClientEvents>(userId: string, event: E, ...args: Parameters<ServerToClientEvents[E]>): void;
}

export interface SessionServiceOptions {
  config: Config;
  db: Kysely<Database>;
  store: SessionStore;
  jobs: BillingJobSink;
  notifier: UserNotifier;
  replies: ReplyGenerator;
  logger: Logger;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The highest per-minute rate the meter takes (100000 credits): keeps the Lua arithmetic exact in doubles. */
export const MAX_RATE_PER_MINUTE = 1_000_000_000n;

/** Attempts at queueing the jobs of a change that already happened in Redis (ids make retries harmless). */
const ENQUEUE_ATTEMPTS = 4;

function headerOf(session: LiveSession): SessionHeader {
  return {
    sessionId: session.id,
    userId: session.userId,
    cloneId: session.cloneId,
    type: session.type,
    ratePerMinute: formatMoney(session.rate),
    startTime: iso(session.startedAt),
  };
}

function messageJob(session: LiveSession, message: StoredMessage): BillingJob<'message'> {
  return {
    name: 'message',
    jobId: billingJobId.message(message.id),
    data: {
      session: headerOf(session),
      message: {
        id: message.id,
        senderType: message.senderType,
        content: message.content,
        tokensUsed: message.tokensUsed,
        costIncrement: formatMoney(message.costIncrement),
        createdAt: iso(message.createdAt),
        clientMessageId: message.clientMessageId,
      },
    },
  };
}

/** The jobs a script's state changes imply: a state job per change, a settlement per end. */
export function jobsForOutcome(outcome: Outcome): BillingJob[] {
  const jobs: BillingJob[] = [];
  for (const change of outcome.changes) {
    const session = outcome.sessions.get(change.sessionId);
    if (!session) continue;
    jobs.push({
      name: 'session-state',
      jobId: billingJobId.sessionState(change.sessionId, change.version),
      data: { session: headerOf(session), status: change.status, version: change.version, at: iso(change.at), activeMs: change.activeMs },
    });
    if (change.status === 'ended' && session.status === 'ended') jobs.push(settleJob(session, change.version));
  }
  return jobs;
}

function settleJob(session: LiveSession, version: number): BillingJob<'settle-session'> {
  const endedAt = session.endedAt ?? session.startedAt;
  return {
    name: 'settle-session',
    jobId: billingJobId.settleSession(session.id),
    data: {
      session: headerOf(session),
      version,
      endTime: iso(endedAt),
      reason: session.reason || 'user',
      activeMs: session.activeMs,
      durationMinutes: durationOf(session, endedAt),
      timeCost: formatMoney(session.timeCost ?? 0n),
      aiCost: formatMoney(session.aiCost),
      totalCost: formatMoney(session.total ?? costAt(session, endedAt)),
      messageCount: session.msgCount,
      userMessageCount: session.userMsgCount,
    },
  };
}

export class SessionService {
  private readonly config: Config;
  private readonly db: Kysely<Database>;
  private readonly store: SessionStore;
  private readonly jobs: BillingJobSink;
  private readonly notifier: UserNotifier;
  private readonly replies: ReplyGenerator;
  private readonly logger: Logger;
  /** Replies being written, so close() can stop them. */
  private readonly pendingReplies = new Set<AbortController>();
  private readonly replyTasks = new Set<Promise<void>>();

  constructor(options: SessionServiceOptions) {
    this.config = options.config;
    this.db = options.db;
    this.store = options.store;
    this.jobs = options.jobs;
    this.notifier = options.notifier;
    this.replies = options.replies;
    this.logger = options.logger;
  }

  async start(userId: string, payload: ClientPayload<'session:start'>): Promise<WireSession> {
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
    await refreshBalance(this.db, this.store, userId);
    const sessionId = randomUUID();
    const outcome = await this.store.start({
      userId,
      sessionId,
      cloneId: clone.id,
      type: payload.type,
      rate,
      minStartMs: this.config.MIN_START_SECONDS * 1000,
      maxOpen: this.config.MAX_OPEN_SESSIONS,
    });
    // What became due before the start is committed even when the start itself is refused.
    await this.commit(userId, outcome);
    assertScriptOk(outcome.code, { cloneId: clone.id, available: outcome.result.available });
    return this.wireSession(outcome, sessionId);
  }

  async act(userId: string, sessionId: string, action: 'pause' | 'resume' | 'end'): Promise<WireSession> {
    const outcome = await this.store.transition(userId, sessionId, action, 'user');
    await this.commit(userId, outcome);
    if (outcome.code === ScriptCode.notFound) await this.explainMissing(userId, sessionId, true);
    assertScriptOk(outcome.code, { sessionId, status: outcome.sessions.get(sessionId)?.status });
    return this.wireSession(outcome, sessionId);
  }

  async get(userId: string, sessionId: string): Promise<WireSession> {
    const outcome = await this.store.advance(userId);
    await this.commit(userId, outcome);
    const live = outcome.sessions.get(sessionId) ?? (await this.store.peek(userId, sessionId));
    if (live) return toWireSession(live, outcome.now);
    return this.explainMissing(userId, sessionId, false);
  }

  async sendMessage(userId: string, payload: ClientPayload<'message:send'>): Promise<WireMessage> {
    const messageId = randomUUID();
    const outcome = await this.store.addMessage(userId, payload.sessionId, payload.clientMessageId, messageId, payload.content);
    const session = outcome.sessions.get(payload.sessionId);
    const stored = typeof outcome.result.message === 'string' ? parseStoredMessage(outcome.result.message) : undefined;
    // Queue the message before the ack, also for a repeat: the ack promises the message is kept.
    const extra = stored && session ? [messageJob(session, stored)] : [];
    await this.commit(userId, outcome, extra);
    if (outcome.code === ScriptCode.notFound) await this.explainMissing(userId, payload.sessionId, true);
    assertScriptOk(outcome.code, { sessionId: payload.sessionId, status: session?.status });
    if (!stored || !session) throw new Error('message-add returned no message');
    if (outcome.code === ScriptCode.ok) this.startReply(session);
    return toWireMessage(stored);
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

  /** Applies what is due for the user (the scheduler's and ticks' entry); returns the outcome. */
  async advance(userId: string): Promise<Outcome> {
    const outcome = await this.store.advance(userId);
    await this.commit(userId, outcome);
    return outcome;
  }

  /** One meter tick for a user: brings the state up to now and sends `meter:tick` for each active session. */
  async tick(userId: string): Promise<boolean> {
    const outcome = await this.advance(userId);
    const open = [...outcome.sessions.values()].filter((s) => s.status !== 'ended');
    const available = availableCredits(outcome.budget, open, outcome.now);
    const creditsRemaining = formatMoney(available > 0n ? available : 0n);
    let active = false;
    for (const session of open) {
      if (session.status !== 'active') continue;
      active = true;
      this.notifier.emit(userId, 'meter:tick', {
        sessionId: session.id,
        activeSeconds: Math.floor(activeMsAt(session, outcome.now) / 1000),
        cost: formatMoney(costAt(session, outcome.now)),
        creditsRemaining,
        ratePerMinute: formatMoney(session.rate),
      });
    }
    return active;
  }

  /** The user's last socket went away: their active chat sessions pause now. */
  async pauseChatsOf(userId: string): Promise<void> {
    const outcome = await this.advance(userId);
    for (const session of outcome.sessions.values()) {
      if (session.status !== 'active' || session.type !== 'chat') continue;
      const paused = await this.store.transition(userId, session.id, 'pause');
      await this.commit(userId, paused);
    }
  }

  /** Stops replies in flight and waits for them. */
  async close(): Promise<void> {
    for (const controller of this.pendingReplies) controller.abort();
    await Promise.allSettled([...this.replyTasks]);
  }

  /** Queues the billing jobs of an outcome, schedules the next due instant and notifies the user. */
  private async commit(userId: string, outcome: Outcome, extraJobs: BillingJob[] = []): Promise<void> {
    const jobs = [...extraJobs, ...jobsForOutcome(outcome)];
    if (jobs.length > 0) await this.enqueue(jobs);
    if (outcome.nextDue !== null) await this.store.scheduleDue(userId, outcome.nextDue);
    const notified = new Set<string>();
    for (const change of outcome.changes) {
      const session = outcome.sessions.get(change.sessionId);
      if (!session || notified.has(session.id)) continue;
      notified.add(session.id);
      const wire = toWireSession(session, outcome.now);
      this.notifier.emit(userId, 'session:updated', wire);
      if (session.status === 'ended') this.notifier.emit(userId, 'session:ended', { sessionId: session.id, reason: session.reason, session: wire });
    }
    await this.warnLowBalance(userId, outcome);
  }

  /** The change is already made in Redis: its jobs must follow, so a failed add is retried with backoff. */
  private async enqueue(jobs: BillingJob[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.jobs.addJobs(jobs);
        return;
      } catch (error) {
        if (attempt >= ENQUEUE_ATTEMPTS) throw error;
        this.logger.warn({ err: error, attempt, jobs: jobs.map((j) => j.jobId) }, 'queueing billing jobs failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 50 * 4 ** attempt));
      }
    }
  }

  private async warnLowBalance(userId: string, outcome: Outcome): Promise<void> {
    const open = [...outcome.sessions.values()].filter((s) => s.status !== 'ended');
    const available = availableCredits(outcome.budget, open, outcome.now);
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

  private startReply(session: LiveSession): void {
    const controller = new AbortController();
    this.pendingReplies.add(controller);
    const task = this.writeReply(session, controller.signal)
      .catch((error: unknown) => this.logger.error({ err: error, sessionId: session.id }, 'reply failed'))
      .finally(() => {
        this.pendingReplies.delete(controller);
        this.replyTasks.delete(task);
      });
    this.replyTasks.add(task);
  }

  private async writeReply(session: LiveSession, signal: AbortSignal): Promise<void> {
    const { userId, id: sessionId } = session;
    const messageId = randomUUID();
    try {
      const clone = await this.db
        .selectFrom('clones')
        .select(['name', 'bio', 'description', 'expertise_areas', 'personality_traits'])
        .where('id', '=', session.cloneId)
        .executeTakeFirstOrThrow();
      const history = await this.store.recentMessages(userId, sessionId, this.config.CONTEXT_MESSAGES);
      const reply = await this.replies.generate(
        {
          clone: {
            name: clone.name,
            bio: clone.bio,
            description: clone.description,
            expertiseAreas: clone.expertise_areas ?? [],
            personalityTraits: clone.personality_traits,
          },
          history: history.map((m) => ({ senderType: m.senderType, content: m.content })),
          signal,
        },
        (delta) => this.notifier.emit(userId, 'message:delta', { sessionId, messageId, delta }),
      );
      const cost = replyCost(reply.tokensUsed, this.config.aiPricePer1kTokens);
      const outcome = await this.store.addReply(userId, sessionId, messageId, reply.content, reply.tokensUsed, cost);
      const live = outcome.sessions.get(sessionId);
      const stored = typeof outcome.result.message === 'string' ? parseStoredMessage(outcome.result.message) : undefined;
      if (!live || !stored) throw new Error('reply-add returned no message');
      await this.commit(userId, outcome, [messageJob(live, stored)]);
      this.notifier.emit(userId, 'message:completed', { sessionId, message: toWireMessage(stored) });
    } catch (error) {
      if (signal.aborted) return;
      this.notifier.emit(userId, 'message:failed', { sessionId, messageId, error: toWireError(error) });
      throw error;
    }
  }
}
