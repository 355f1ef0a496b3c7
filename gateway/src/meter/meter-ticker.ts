/**
 * Sends `meter:tick` every METER_TICK_MS to the users connected to this gateway who have an active session.
 * A user is watched from their first event until a tick finds nothing active.
 *
 * The interval is cut into slots and each watched user ticks in one of them (the least loaded when they were first
 * watched), so a gateway's ticks are spread over the second instead of all leaving at once. Slots run on a fixed
 * schedule (origin + k·slot, not a chain of intervals, so lateness never accumulates); a slot the event loop was too
 * busy to run on time runs as soon as it can, none is skipped. A user whose previous tick has not come back is not
 * ticked again on top of it; everyone else is, however slow that one user is.
 *
 * A second interval keeps those users' presence fresh with one tiny script each (presence-refresh.lua): a tick
 * slowed by load must never make a connected user look absent (their chats would pause), and most ticks are
 * projected from a held reading without any script (SessionService.tick), so they are no sightings.
 */
import type { Logger } from 'pino';
import type { SessionService } from '../sessions/session-service.ts';

export interface MeterTickerOptions {
  service: Pick<SessionService, 'tick' | 'heartbeat' | 'forget'>;
  logger: Logger;
  /** Interval between ticks (config METER_TICK_MS). */
  tickMs: number;
  /** Interval between presence heartbeats: well inside PRESENCE_TIMEOUT_MS. */
  heartbeatMs: number;
  /** Slots one tick interval is cut into (default 10). */
  slots?: number;
}

export class MeterTicker {
  /** Watched users → their slot. */
  private readonly watched = new Map<string, number>();
  private readonly bySlot: Array<Set<string>>;
  private readonly slotMs: number;
  /** Users whose tick is on its way. */
  private readonly inFlight = new Set<string>();
  /** Users watched again (new activity) while their tick was on its way: an idle answer does not unwatch them. */
  private readonly rewatched = new Set<string>();
  private readonly ticks = new Set<Promise<void>>();
  private origin = 0;
  /** Number of the next slot to run, counted from `origin`. */
  private next = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<unknown> | undefined;

  constructor(private readonly options: MeterTickerOptions) {
    const slots = Math.max(1, Math.floor(options.slots ?? 10));
    this.bySlot = Array.from({ length: slots }, () => new Set<string>());
    this.slotMs = options.tickMs / slots;
  }

  /** Ticks the user (who has sockets on this process) until a tick finds nothing active. */
  watch(userId: string): void {
    if (this.watched.has(userId)) {
      if (this.inFlight.has(userId)) this.rewatched.add(userId);
      return;
    }
    // the least loaded slot; among equals the one that ran last, so the first tick comes about an interval later
    const slots = this.bySlot.length;
    const last = (((this.next - 1) % slots) + slots) % slots;
    let chosen = last;
    for (let i = 1; i < slots; i++) {
      const slot = (last + i) % slots;
      if (this.bySlot[slot]!.size < this.bySlot[chosen]!.size) chosen = slot;
    }
    this.watched.set(userId, chosen);
    this.bySlot[chosen]!.add(userId);
  }

  /** The slot of the interval a watched user ticks in (0 … slots − 1), or undefined when not watched. */
  slotOf(userId: string): number | undefined {
    return this.watched.get(userId);
  }

  /** The user has no sockets here any more: ticking them would claim a presence they do not have. */
  unwatch(userId: string): void {
    const slot = this.watched.get(userId);
    if (slot === undefined) return;
    this.watched.delete(userId);
    this.bySlot[slot]!.delete(userId);
    this.rewatched.delete(userId);
    this.options.service.forget(userId);
  }

  start(): void {
    this.running = true;
    this.origin = performance.now();
    this.next = 1;
    this.schedule();
    this.heartbeatTimer = setInterval(() => {
      this.beating ??= this.heartbeatAll().finally(() => (this.beating = undefined));
    }, this.options.heartbeatMs);
  }

  /**
   * Refreshes the presence of every watched user. A heartbeat that finds this gateway's sighting gone or stale
   * (another gateway judged the gap) forgets the user's reading, so their next tick reads the state by script: a
   * sighting that records the user here again.
   */
  async heartbeatAll(): Promise<void> {
    await Promise.all(
      [...this.watched.keys()].map(async (userId) => {
        try {
          if (!(await this.options.service.heartbeat(userId))) this.options.service.forget(userId);
        } catch (error) {
          this.options.logger.error({ err: error, userId }, 'presence heartbeat failed');
        }
      }),
    );
  }

  /** Ticks every watched user now (each once; a user whose tick is on its way is skipped). */
  async tickAll(): Promise<void> {
    const started: Array<Promise<void>> = [];
    for (const userId of this.watched.keys()) started.push(this.tickUser(userId));
    await Promise.all(started);
  }

  async close(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.heartbeatTimer);
    await Promise.all([...this.ticks, this.beating]);
  }

  private schedule(): void {
    if (!this.running) return;
    const at = this.origin + this.next * this.slotMs;
    this.timer = setTimeout(() => this.runDueSlots(), Math.max(0, at - performance.now()));
  }

  private runDueSlots(): void {
    const now = performance.now();
    const slots = this.bySlot.length;
    for (let ran = 0; this.origin + this.next * this.slotMs <= now; ran++) {
      if (ran === slots) {
        // stalled for a whole interval: every user has had a tick from this burst; carry on from now
        this.next = Math.floor((now - this.origin) / this.slotMs) + 1;
        break;
      }
      const slot = this.next % slots;
      this.next += 1;
      for (const userId of this.bySlot[slot]!) void this.tickUser(userId);
    }
    this.schedule();
  }

  private tickUser(userId: string): Promise<void> {
    if (this.inFlight.has(userId)) return Promise.resolve(); // a slow tick is not stacked on
    this.inFlight.add(userId);
    this.rewatched.delete(userId);
    const task = this.options.service
      .tick(userId)
      .then(
        (active) => {
          // unwatched while the tick was on its way: the reading it may have taken goes too
          if (!this.watched.has(userId)) this.options.service.forget(userId);
          else if (!active && !this.rewatched.has(userId)) this.unwatch(userId);
        },
        (error: unknown) => this.options.logger.error({ err: error, userId }, 'meter tick failed'),
      )
      .finally(() => {
        this.inFlight.delete(userId);
        this.rewatched.delete(userId);
        this.ticks.delete(task);
      });
    this.ticks.add(task);
    return task;
  }
}
