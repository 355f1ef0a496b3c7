/**
 * Group commit: work submitted while a flush is running waits for it and then goes together in the next flush, so
 * the jobs a billing worker runs at once share one Postgres transaction instead of each paying its own round trips
 * and WAL flush, and the gateway's relays share one `addBulk` to the queue. A lone urgent submission is flushed
 * at once (after the current I/O turn, to pick up others arriving with it), so nothing waits when the worker is
 * idle; one that is not urgent may wait up to `lingerMs` for others to join it (a smaller queue write, fewer jobs),
 * counted from its submission, also when it arrived during a flush: under steady load the flushes then come every
 * `lingerMs` rather than back to back, each as full as the linger allows.
 */

export interface GroupCommitOptions<I> {
  /** Flushes running at once. Default 1. */
  maxInFlight?: number;
  /** Most weight in one flush (at least one item is always taken). Default: unbounded. */
  maxWeight?: number;
  /** The weight of an item. Default 1. */
  weight?: (item: I) => number;
  /** How long a submission that is not urgent may wait for others before its flush starts. Default 0. */
  lingerMs?: number;
}

interface Pending<I, R> {
  item: I;
  urgent: boolean;
  /** performance.now() at submission: a lingering item goes at most `lingerMs` after it. */
  at: number;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, R> {
  readonly #flush: (items: I[]) => Promise<R[]>;
  readonly #maxInFlight: number;
  readonly #maxWeight: number;
  readonly #weight: (item: I) => number;
  readonly #lingerMs: number;
  #pending: Pending<I, R>[] = [];
  #inFlight = 0;
  #scheduled = false;
  #lingering: NodeJS.Timeout | undefined;

  /** `flush` gets the items of a group and returns one result per item, in order; if it throws, every item rejects. */
  constructor(flush: (items: I[]) => Promise<R[]>, options: GroupCommitOptions<I> = {}) {
    this.#flush = flush;
    this.#maxInFlight = options.maxInFlight ?? 1;
    this.#maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
    this.#weight = options.weight ?? (() => 1);
    this.#lingerMs = options.lingerMs ?? 0;
  }

  /**
   * Resolves with the item's result once the flush carrying it is done. Not `urgent`, it may wait up to `lingerMs`
   * for company (an urgent submission arriving meanwhile takes it along at once).
   */
  submit(item: I, urgent = true): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, urgent, at: performance.now(), resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight || this.#pending.length === 0) return;
    if (this.#lingerMs > 0 && !this.#pending.some((p) => p.urgent)) {
      // the oldest pending item (the first) sets the deadline
      const waitMs = Math.max(0, this.#pending[0]!.at + this.#lingerMs - performance.now());
      this.#lingering ??= setTimeout(() => {
        this.#lingering = undefined;
        this.#flushNow();
      }, waitMs);
      return;
    }
    this.#flushNow();
  }

  #flushNow(): void {
    if (this.#scheduled) return;
    clearTimeout(this.#lingering);
    this.#lingering = undefined;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  #start(): void {
    while (this.#inFlight < this.#maxInFlight && this.#pending.length > 0) {
      const group = this.#take();
      this.#inFlight++;
      void this.#run(group);
    }
  }

  async #run(group: Pending<I, R>[]): Promise<void> {
    try {
      const results = await this.#flush(group.map((p) => p.item));
      if (results.length !== group.length) throw new Error(`flush returned ${results.length} results for ${group.length} items`);
      group.forEach((p, i) => p.resolve(results[i]!));
    } catch (error) {
      for (const p of group) p.reject(error);
    } finally {
      this.#inFlight--;
      // what arrived during the flush goes now if urgent, else when its linger is up
      this.#schedule();
    }
  }

  #take(): Pending<I, R>[] {
    let weight = 0;
    let n = 0;
    while (n < this.#pending.length) {
      const next = this.#weight(this.#pending[n]!.item);
      if (n > 0 && weight + next > this.#maxWeight) break;
      weight += next;
      n++;
    }
    return this.#pending.splice(0, n);
  }
}
