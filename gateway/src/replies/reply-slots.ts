/**
 * `ReplySlots`: at most `limit` clone replies generate at once on a gateway; the rest wait their turn in arrival
 * order. Every acknowledged message still gets its reply (a wait is never dropped), but under overload replies
 * queue instead of all streaming at once and starving the acknowledgements of new messages.
 */
export class ReplySlots {
  private running = 0;
  private readonly waiting: Array<{ grant: () => void }> = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a reply bound must be a whole number ≥ 1, not ${limit}`);
  }

  /** Replies generating now. */
  get active(): number {
    return this.running;
  }

  /** Replies waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits for a slot, in arrival order. Resolves true once the caller holds one (it must `release()` it), or false
   * when `signal` aborts first (the caller holds nothing; its place in the queue is given up).
   */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.running < this.limit && this.waiting.length === 0) {
      this.running += 1;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.running += 1;
          resolve(true);
        },
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(entry);
        if (index >= 0) this.waiting.splice(index, 1);
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Gives a slot back: the longest-waiting reply takes it. */
  release(): void {
    this.running -= 1;
    const next = this.waiting.shift();
    next?.grant();
  }
}
