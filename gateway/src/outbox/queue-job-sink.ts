/**
 * Billing jobs into the user's partition of the billing queue (BillingQueues), group-committed per partition
 * (GroupCommit): calls that arrive while an `addBulk` is
 * in flight wait for it and then go together in the next one, packed by `packJobs` (many facts to a job, settlements with
 * settlements). A lone call waits only for the rest of the current I/O turn (setImmediate), so relays of events that
 * arrived together share a batch and nothing else waits. Each call resolves when its jobs are in Redis, and rejects
 * (leaving its outbox entries for a retry) if the `addBulk` carrying them failed.
 * Deterministic job ids make a repeated add a no-op; a fact that lands in two different batches is absorbed by the
 * worker.
 */
import type { BillingQueues } from '#shared/contract/billing-queue.ts';
import { billingPartition } from '#shared/live-state/keys.ts';
import { MAX_BATCH_FACTS } from '#shared/contract/billing-jobs.ts';
import type { BillingJob } from '#shared/live-state/outbox-jobs.ts';
import { GroupCommit } from '#shared/concurrency/group-commit.ts';
import { packJobs } from './pack-jobs.ts';
import type { BillingJobSink } from './outbox-relay.ts';

export interface QueueJobSinkOptions {
  /** Most facts in one `fact-batch` job: default and at most MAX_BATCH_FACTS (250), what the worker's schema accepts. */
  maxFacts?: number;
  /** Most jobs (facts and settlements) handed to one `addBulk`. Default 2 000. */
  maxJobsPerAdd?: number;
  /** How long jobs nobody waits for may wait for others to share their `addBulk` (config RELAY_LINGER_MS). Default 0. */
  lingerMs?: number;
}

export class QueueJobSink implements BillingJobSink {
  /** One group commit per partition: an `addBulk` goes to one queue. */
  readonly #adds: Array<GroupCommit<BillingJob[], undefined>>;

  constructor(queues: BillingQueues, options: QueueJobSinkOptions = {}) {
    // a bigger batch would be refused by the worker's schema and its facts failed for good
    const maxFacts = Math.min(options.maxFacts ?? MAX_BATCH_FACTS, MAX_BATCH_FACTS);
    // per partition, one addBulk at a time, of every call waiting up to maxJobsPerAdd jobs (at least one call)
    this.#adds = queues.partitions.map((queue) => new GroupCommit<BillingJob[], undefined>(
      async (calls) => {
        await queue.addBulk(packJobs(calls.flat(), maxFacts));
        return calls.map(() => undefined);
      },
      { maxInFlight: 1, maxWeight: options.maxJobsPerAdd ?? 2_000, weight: (jobs) => jobs.length, lingerMs: options.lingerMs ?? 0 },
    ));
  }

  addJobs(userId: string, jobs: BillingJob[], options: { urgent?: boolean } = {}): Promise<void> {
    if (jobs.length === 0) return Promise.resolve();
    return this.#adds[billingPartition(userId)]!.submit(jobs, options.urgent ?? true);
  }
}
