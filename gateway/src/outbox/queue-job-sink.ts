/**
 * Billing jobs into the BullMQ billing queue, group-committed: calls that arrive while an `addBulk` is in flight
 * wait for it and then go together in the next one, packed by `packJobs` (many facts to a job, settlements with
 * settlements). A lone call waits only for the rest of the current I/O turn (setImmediate), so relays of events that
 * arrived together share a batch and nothing else waits. Each call resolves when its jobs are in Redis, and rejects
 * (leaving its outbox entries for a retry) if the `addBulk` carrying them failed.
 * Deterministic job ids make a repeated add a no-op; a fact that lands in two different batches is absorbed by the
 * worker.
 */
import type { Queue } from 'bullmq';
import { MAX_BATCH_FACTS } from '#shared/contract/billing-jobs.ts';
import type { BillingJob } from '#shared/live-state/outbox-jobs.ts';
import { packJobs } from './pack-jobs.ts';
import type { BillingJobSink } from './outbox-relay.ts';

export interface QueueJobSinkOptions {
  /** Most facts in one `fact-batch` job: default and at most MAX_BATCH_FACTS (250), what the worker's schema accepts. */
  maxFacts?: number;
  /** Most jobs (facts and settlements) handed to one `addBulk`. Default 2 000. */
  maxJobsPerAdd?: number;
}

interface Waiting {
  jobs: BillingJob[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class QueueJobSink implements BillingJobSink {
  readonly #queue: Queue;
  readonly #maxFacts: number;
  readonly #maxJobsPerAdd: number;
  #waiting: Waiting[] = [];
  #adding = false;

  constructor(queue: Queue, options: QueueJobSinkOptions = {}) {
    this.#queue = queue;
    // a bigger batch would be refused by the worker's schema and its facts failed for good
    this.#maxFacts = Math.min(options.maxFacts ?? MAX_BATCH_FACTS, MAX_BATCH_FACTS);
    this.#maxJobsPerAdd = options.maxJobsPerAdd ?? 2_000;
  }

  addJobs(jobs: BillingJob[]): Promise<void> {
    if (jobs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ jobs, resolve, reject });
      if (!this.#adding) void this.#addWaiting();
    });
  }

  /** Sends everything waiting, one `addBulk` at a time, until nothing is left. */
  async #addWaiting(): Promise<void> {
    this.#adding = true;
    try {
      // the rest of this I/O turn first: relays of events that arrived together go together
      await new Promise((resolve) => setImmediate(resolve));
      while (this.#waiting.length > 0) {
        const group = this.#take();
        try {
          const jobs = packJobs(group.flatMap((w) => w.jobs), this.#maxFacts);
          await this.#queue.addBulk(jobs);
          for (const waiting of group) waiting.resolve();
        } catch (error) {
          for (const waiting of group) waiting.reject(error);
        }
      }
    } finally {
      this.#adding = false;
    }
  }

  /** The waiting calls for the next `addBulk`: all of them, up to `maxJobsPerAdd` jobs (at least one call). */
  #take(): Waiting[] {
    let count = 0;
    let n = 0;
    while (n < this.#waiting.length && (n === 0 || count + this.#waiting[n]!.jobs.length <= this.#maxJobsPerAdd)) {
      count += this.#waiting[n]!.jobs.length;
      n++;
    }
    return this.#waiting.splice(0, n);
  }
}
