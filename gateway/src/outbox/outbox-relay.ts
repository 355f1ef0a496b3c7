/**
 * Relays the billing facts in users' outboxes into the billing queue, then deletes them. The fast path relays
 * what a script just recorded; the sweep relays what a process that died before relaying left behind.
 * Either may relay an entry twice: the job ids are deterministic, so the queue keeps one, and the billing worker
 * applies each fact once even when it arrives in two different batches.
 */
import type { Logger } from 'pino';
import { jobFromOutbox, type BillingJob } from '#shared/live-state/outbox-jobs.ts';
import type { OutboxEntry, SessionStore } from '#shared/live-state/session-store.ts';

/** Where billing jobs go (a BullMQ queue in production and tests). */
export interface BillingJobSink {
  /** The user's jobs. Not `urgent` (nobody waits for it), they may wait a moment to share a queue write with others. */
  addJobs(userId: string, jobs: BillingJob[], options?: { urgent?: boolean }): Promise<void>;
}

export interface OutboxRelayOptions {
  store: SessionStore;
  jobs: BillingJobSink;
  logger: Logger;
  /** Entries younger than this are left to the process that wrote them (config OUTBOX_GRACE_MS). */
  graceMs: number;
  /** Attempts at queueing before giving up for now (the entries stay in the outbox). */
  attempts?: number;
}

/** Users whose outboxes one sweep relays at once. */
const SWEEP_USERS_AT_ONCE = 50;

/** Milliseconds since the epoch of a stream entry id (`<ms>-<seq>`). */
const entryTime = (id: string) => Number(id.split('-')[0]);

export class OutboxRelay {
  constructor(private readonly options: OutboxRelayOptions) {}

  /**
   * Queues the entries' jobs (retrying with backoff) and deletes them from the user's outbox. `urgent: false` when
   * no caller waits for it: the jobs may then wait a moment (RELAY_LINGER_MS) to travel with others.
   */
  async relay(userId: string, entries: OutboxEntry[], options: { urgent?: boolean } = {}): Promise<void> {
    if (entries.length === 0) return;
    const jobs = entries.map(jobFromOutbox);
    const attempts = this.options.attempts ?? 4;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.jobs.addJobs(userId, jobs, options);
        break;
      } catch (error) {
        if (attempt >= attempts) throw error;
        this.options.logger.warn({ err: error, attempt, userId }, 'queueing billing jobs failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 50 * 4 ** attempt));
      }
    }
    await this.options.store.ackOutbox(userId, entries.map((e) => e.id));
  }

  /**
   * Relays every outbox entry older than the grace period (or `graceMs`); returns how many. Users are relayed
   * SWEEP_USERS_AT_ONCE at a time, so their jobs share queue calls (and batches).
   */
  async sweep(graceMs = this.options.graceMs): Promise<number> {
    const cutoff = Date.now() - graceMs;
    const users = await this.options.store.usersWithOutbox();
    let relayed = 0;
    for (let from = 0; from < users.length; from += SWEEP_USERS_AT_ONCE) {
      const counts = await Promise.all(
        users.slice(from, from + SWEEP_USERS_AT_ONCE).map(async (userId) => {
          const stale = (await this.options.store.outboxEntries(userId)).filter((e) => entryTime(e.id) <= cutoff);
          if (stale.length > 0) await this.relay(userId, stale);
          return stale.length;
        }),
      );
      relayed += counts.reduce((sum, n) => sum + n, 0);
    }
    if (relayed > 0) this.options.logger.warn({ relayed }, 'relayed outbox entries left behind');
    return relayed;
  }
}
