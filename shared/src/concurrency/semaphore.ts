/**
 * `Semaphore`: at most `limit` holders at once; the others wait their turn in arrival order, and every wait is
 * granted in the end (none is dropped) unless its signal aborts first. The gateway bounds its clone replies with it
 * (under overload replies queue instead of all streaming at once and starving the acknowledgements of new messages);
 * the billing worker bounds its settlements running alone.
 */
export class Semaphore {
  private running = 0;
  private readonly waiting: Array<{ grant: () => void }> = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a semaphore's limit must be a whole number ≥ 1, not ${limit}`);
  }

  /** Holders now. */
  get active(): number {
    return this.running;
  }

  /** Waits for a turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits for a turn, in arrival order. Resolves true once the caller holds one (it must `release()` it), or false
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

  /** Gives a turn back: the longest waiting takes it. */
  release(): void {
    this.running -= 1;
    const next = this.waiting.shift();
    next?.grant();
  }

  /** Runs `task` in its turn and releases the turn after it. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
