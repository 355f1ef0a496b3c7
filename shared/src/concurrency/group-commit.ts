/**
 * Group commit: work submitted while a flush is running waits for it and then goes together in the next flush, so
 * the jobs a billing worker runs at once share one Postgres transaction instead of each paying its own round trips
 * and WAL flush, and the gateway's relays share one `addBulk` to the queue. A lone submission is flushed at once (after the current I/O turn, to pick up others arriving with it), so
 * nothing waits when the worker is idle.
 */

export interface GroupCommitOptions<I> {
  /** Flushes running at once. Default 1. */
  maxInFlight?: number;
  /** Most weight in one flush (at least one item is always taken). Default: unbounded. */
  maxWeight?: number;
  /** The weight of an item. Default 1. */
  weight?: (item: I) => number;
}

interface Pending<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, R> {
  readonly #flush: (items: I[]) => Promise<R[]>;
  readonly #maxInFlight: number;
  readonly #maxWeight: number;
  readonly #weight: (item: I) => number;
  #pending: Pending<I, R>[] = [];
  #inFlight = 0;
  #scheduled = false;

  /** `flush` gets the items of a group and returns one result per item, in order; if it throws, every item rejects. */
  constructor(flush: (items: I[]) => Promise<R[]>, options: GroupCommitOptions<I> = {}) {
    this.#flush = flush;
    this.#maxInFlight = options.maxInFlight ?? 1;
    this.#maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
    this.#weight = options.weight ?? (() => 1);
  }

  /** Resolves with the item's result once the flush carrying it is done. */
  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight || this.#pending.length === 0) return;
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
