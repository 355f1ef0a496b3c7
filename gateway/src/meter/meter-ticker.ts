/**
 * Sends `meter:tick` every METER_TICK_MS to the users connected to this gateway who have an active session.
 * One interval for the process; a user is watched from their first event until a tick finds nothing active.
 * A second, faster interval keeps those users' presence fresh with one tiny script each: a tick round slowed by
 * load must never make a connected user look absent (their chats would pause).
 */
import type { Logger } from 'pino';
import type { SessionService } from '../sessions/session-service.ts';

export interface MeterTickerOptions {
  service: SessionService;
  logger: Logger;
  /** Interval between ticks (config METER_TICK_MS). */
  tickMs: number;
  /** Interval between presence heartbeats: well inside PRESENCE_TIMEOUT_MS. */
  heartbeatMs: number;
}

export class MeterTicker {
  private readonly watched = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<unknown> | undefined;
  private beating: Promise<unknown> | undefined;

  constructor(private readonly options: MeterTickerOptions) {}

  /** Ticks the user (who has sockets on this process) until a tick finds nothing active. */
  watch(userId: string): void {
    this.watched.add(userId);
  }

  /** The user has no sockets here any more: ticking them would claim a presence they do not have. */
  unwatch(userId: string): void {
    this.watched.delete(userId);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.ticking) return; // a slow tick is not stacked on
      this.ticking = this.tickAll().finally(() => (this.ticking = undefined));
    }, this.options.tickMs);
    this.heartbeatTimer = setInterval(() => {
      this.beating ??= this.heartbeatAll().finally(() => (this.beating = undefined));
    }, this.options.heartbeatMs);
  }

  async heartbeatAll(): Promise<void> {
    await Promise.all(
      [...this.watched].map((userId) =>
        this.options.service.heartbeat(userId).catch((error: unknown) => {
          this.options.logger.error({ err: error, userId }, 'presence heartbeat failed');
        }),
      ),
    );
  }

  async tickAll(): Promise<void> {
    await Promise.all(
      [...this.watched].map(async (userId) => {
        try {
          if (!(await this.options.service.tick(userId))) this.watched.delete(userId);
        } catch (error) {
          this.options.logger.error({ err: error, userId }, 'meter tick failed');
        }
      }),
    );
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.heartbeatTimer);
    await Promise.all([this.ticking, this.beating]);
  }
}
