/**
 * Runs due events (credit exhaustion, idle pause, paused timeout, absence, checkpoints) without a timer per session:
 * one sorted set of users by their next due instant, shared by every gateway. Each poll claims due users for a lease
 * (claim-due.lua), so they are handled once at a time and a dead gateway's claims pass to another when they run out.
 * Handling a user applies everything due at its exact instant (the Lua advance), so how late it is noticed never
 * changes what is charged.
 */
import type { Logger } from 'pino';
import type { SessionStore } from '#shared/live-state/session-store.ts';
import type { SessionService } from '../sessions/session-service.ts';

export interface DueSchedulerOptions {
  store: SessionStore;
  service: Pick<SessionService, 'applyDue'>;
  logger: Logger;
  /** How often to look for due users (config DUE_POLL_MS). */
  pollMs: number;
  /** How long a claim on a user's due events lasts (config LEASE_MS): a dead gateway's users pass on after it. */
  leaseMs: number;
  /** Most users handled per poll. */
  batch?: number;
}

export class DueScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: DueSchedulerOptions) {}

  start(): void {
    this.closed = false;
    const loop = () => {
      if (this.closed) return;
      this.running = this.pollOnce()
        .then(() => undefined)
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'due poll failed'))
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(loop, this.options.pollMs);
        });
    };
    loop();
  }

  /** Handles every user whose due instant has passed; returns how many. */
  async pollOnce(): Promise<number> {
    const due = await this.options.store.claimDue(this.options.batch ?? 200, this.options.leaseMs);
    await Promise.all(
      due.map(async ({ userId, at }) => {
        try {
          // the entry is moved below (reschedule-due.lua), so the advance does not schedule it as well
          const outcome = await this.options.service.applyDue(userId);
          await this.options.store.rescheduleDue(userId, at, outcome.nextDue);
        } catch (error) {
          this.options.logger.error({ err: error, userId }, 'due event failed');
        }
      }),
    );
    return due.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
