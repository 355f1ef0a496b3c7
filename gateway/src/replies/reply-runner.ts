/**
 * `ReplyRunner`: the clone's replies to a session's messages, each written in turn (at most `maxRepliesInFlight`
 * at once on a gateway, the rest waiting in arrival order), streamed to the user as coalesced deltas, then stored
 * and billed through the live state. A reply cut short (pause, end, the agent's interruption, shutdown) is stored
 * and billed for what it produced; one stopped while it still waited produced nothing and costs nothing.
 */
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import { toWireError } from '#shared/errors/app-error.ts';
import { replyCost } from '#shared/money/pricing.ts';
import type { LiveSession } from '#shared/live-state/live-session.ts';
import { parseStoredMessage, toWireMessage, type SessionStore } from '#shared/live-state/session-store.ts';
import type { OutcomePublisher } from '../sessions/outcome-publisher.ts';
import type { CloneProfiles } from './clone-profiles.ts';
import { countPromptTokens, countTokens } from './count-tokens.ts';
import { DeltaCoalescer } from './delta-coalescer.ts';
import type { Passage, ReplyGenerator, ReplyRequest } from './reply-generator.ts';
import { Semaphore } from '#shared/concurrency/semaphore.ts';
import { buildChatMessages } from './system-prompt.ts';

export interface ReplyRunnerOptions {
  config: Pick<Config, 'CONTEXT_MESSAGES' | 'aiPricePer1kTokens'>;
  store: SessionStore;
  publisher: OutcomePublisher;
  replies: ReplyGenerator;
  cloneProfiles: CloneProfiles;
  /** Finds the passages of the clone's documents that match a question (none when absent). */
  retrieve?: ((cloneId: string, question: string, signal: AbortSignal) => Promise<Passage[]>) | undefined;
  /** Replies generating at once on this gateway; further ones wait in arrival order. */
  maxRepliesInFlight: number;
  /** A reply's deltas are sent joined, at most one `message:delta` per this many ms. */
  deltaIntervalMs: number;
  logger: Logger;
}

interface RunningReply {
  controller: AbortController;
  task: Promise<void>;
}

export class ReplyRunner {
  /** Replies being written, by session, so a pause or an end can cut them short and close() can wait. */
  private readonly running = new Map<string, Set<RunningReply>>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly slots: Semaphore;

  constructor(private readonly options: ReplyRunnerOptions) {
    this.slots = new Semaphore(options.maxRepliesInFlight);
  }

  /** Replies generating now and replies waiting for a slot. */
  get load(): { active: number; queued: number } {
    return { active: this.slots.active, queued: this.slots.queued };
  }

  /** Starts the clone's reply to the session's latest message; it streams under `messageId`. */
  start(session: LiveSession, messageId: string): void {
    const controller = new AbortController();
    const task = this.writeInTurn(session, messageId, controller.signal)
      .catch((error: unknown) => this.options.logger.error({ err: error, sessionId: session.id }, 'reply failed'))
      .finally(() => {
        const forSession = this.running.get(session.id);
        forSession?.delete(entry);
        // a session's entry goes with its last reply (kept, every session ever replied to would stay in memory)
        if (forSession?.size === 0) this.running.delete(session.id);
        this.tasks.delete(task);
      });
    const entry = { controller, task };
    const forSession = this.running.get(session.id) ?? new Set();
    forSession.add(entry);
    this.running.set(session.id, forSession);
    this.tasks.add(task);
  }

  /** Cuts the session's replies short (they are stored and billed for what was produced) and waits for them. */
  async stop(sessionId: string): Promise<void> {
    const running = this.running.get(sessionId);
    // every change that leaves a session inactive asks: most have no reply running
    if (!running || running.size === 0) return;
    const entries = [...running];
    for (const entry of entries) entry.controller.abort();
    await Promise.allSettled(entries.map((entry) => entry.task));
  }

  /** Lets replies in flight finish for up to `drainMs` (they are stored and billed), then stops the rest. */
  async close(drainMs: number): Promise<void> {
    const all = Promise.allSettled([...this.tasks]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    for (const entries of this.running.values()) for (const entry of entries) entry.controller.abort();
    await all;
  }

  /** Writes the reply once one of the gateway's reply slots is free; stopped while waiting, it does nothing. */
  private async writeInTurn(session: LiveSession, messageId: string, signal: AbortSignal): Promise<void> {
    if (!(await this.slots.acquire(signal))) return;
    try {
      await this.write(session, messageId, signal);
    } finally {
      this.slots.release();
    }
  }

  private async write(session: LiveSession, messageId: string, signal: AbortSignal): Promise<void> {
    const { store, publisher, config } = this.options;
    const { userId, id: sessionId } = session;
    let produced = '';
    let request: ReplyRequest | undefined;
    const deltas = new DeltaCoalescer((delta) => publisher.tell(session, 'message:delta', { sessionId, messageId, delta }), this.options.deltaIntervalMs);
    try {
      const clone = await this.options.cloneProfiles.get(session.cloneId);
      const history = await store.recentMessages(userId, sessionId, config.CONTEXT_MESSAGES);
      const question = history.findLast((m) => m.senderType === 'user')?.content ?? '';
      const passages = this.options.retrieve && question ? await this.options.retrieve(session.cloneId, question, signal) : [];
      request = {
        clone,
        passages,
        history: history.map((m) => ({ senderType: m.senderType, content: m.content })),
        signal,
      };
      const reply = await this.options.replies.generate(request, (delta) => {
        produced += delta;
        deltas.push(delta);
      });
      deltas.flush();
      await this.store(session, messageId, reply.content, reply.tokensUsed, passages);
    } catch (error) {
      // what was streamed reaches the clients before the reply's completion or failure
      deltas.flush();
      if (signal.aborted && request) {
        // cut short (paused, ended, client gone, shutting down): billed for the tokens actually produced
        const tokens = countPromptTokens(buildChatMessages(request)) + countTokens(produced);
        await this.store(session, messageId, produced, tokens, request.passages ?? []);
        return;
      }
      if (signal.aborted) return;
      publisher.tell(session, 'message:failed', { sessionId, messageId, error: toWireError(error) });
      throw error;
    }
  }

  private async store(session: LiveSession, messageId: string, content: string, tokensUsed: number, passages: Passage[]): Promise<void> {
    const { store, publisher, config } = this.options;
    const { userId, id: sessionId } = session;
    const citations = passages.map((p) => ({ documentId: p.documentId, title: p.title, chunkIndex: p.chunkIndex }));
    const cost = replyCost(tokensUsed, config.aiPricePer1kTokens);
    const outcome = await store.addReply(userId, sessionId, { messageId, content, tokensUsed, cost, citations });
    const stored = typeof outcome.result.message === 'string' ? parseStoredMessage(outcome.result.message) : undefined;
    if (!stored) throw new Error('reply-add returned no message');
    await publisher.relayScheduleAndNotify(userId, outcome, { awaitRelay: false });
    publisher.tell(session, 'message:completed', { sessionId, message: toWireMessage(stored) });
  }
}
