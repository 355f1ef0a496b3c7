/**
 * `DeltaCoalescer`: gathers a streamed reply's deltas and hands them on at most once per `intervalMs`, joined. Every
 * emit to a user's room is a round trip to Redis (the Socket.IO adapter's stream) read back by every gateway, so one
 * emit per word costs far more than the word; joined deltas still concatenate to exactly the reply.
 */
export class DeltaCoalescer {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param send receives each joined delta (never an empty one), in order
   * @param intervalMs the longest a delta waits before it is sent (default 40 ms)
   */
  constructor(
    private readonly send: (delta: string) => void,
    private readonly intervalMs = 40,
  ) {}

  /** Adds a delta; it goes out with the others of the same interval. */
  push(delta: string): void {
    if (delta === '') return;
    this.pending += delta;
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  /** Sends what is pending now (before the reply's completion or failure is told, so the order holds). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === '') return;
    const delta = this.pending;
    this.pending = '';
    this.send(delta);
  }
}
