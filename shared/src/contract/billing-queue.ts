/**
 * The billing queue as producers (the gateway's relay) and the billing worker open it: BullMQ queue `billing` in each
 * of BILLING_QUEUE_PARTITIONS partitions (keys.ts), a user's jobs always in the user's partition, so a fact relayed
 * twice lands in the same queue and its deterministic job id keeps one. Jobs retry 10 times with exponential backoff,
 * completed ones are kept a day (their ids deduplicate a relayed fact), failed ones are kept for a person to look at
 * (the reconciliation reports them).
 */
import { Queue, type ConnectionOptions, type Job, type JobType } from 'bullmq';
import { BILLING_QUEUE_PARTITIONS, billingPartition, billingQueuePrefix } from '#shared/live-state/keys.ts';
import { BILLING_QUEUE } from './billing-jobs.ts';

export class BillingQueues {
  /** One BullMQ queue per partition, by partition number. */
  readonly partitions: readonly Queue[];

  /** `redisPrefix`: REDIS_PREFIX (each partition's BullMQ prefix is derived from it). */
  constructor(connection: ConnectionOptions, redisPrefix: string) {
    this.partitions = Array.from({ length: BILLING_QUEUE_PARTITIONS }, (_, partition) => new Queue(BILLING_QUEUE, {
      connection,
      prefix: billingQueuePrefix(redisPrefix, partition),
      defaultJobOptions: {
        attempts: 10,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: 86_400, count: 10_000 },
        removeOnFail: false,
      },
    }));
  }

  /** The queue of the user's jobs. */
  forUser(userId: string): Queue {
    return this.partitions[billingPartition(userId)]!;
  }

  /** A job by id, from whichever partition holds it. */
  async getJob(id: string): Promise<Job | undefined> {
    const found = await Promise.all(this.partitions.map((queue) => queue.getJob(id)));
    return found.find((job) => job !== undefined && job !== null) ?? undefined;
  }

  /** Job counts by state, summed over the partitions. */
  async getJobCounts(...states: JobType[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const partition of await Promise.all(this.partitions.map((queue) => queue.getJobCounts(...states)))) {
      for (const [state, n] of Object.entries(partition)) counts[state] = (counts[state] ?? 0) + n;
    }
    return counts;
  }

  /** Up to `limit` failed jobs of every partition. */
  async getFailed(limit: number): Promise<Job[]> {
    return (await Promise.all(this.partitions.map((queue) => queue.getFailed(0, limit - 1)))).flat().slice(0, limit);
  }

  /** Pauses every partition: workers take no new jobs until `resume`. */
  async pause(): Promise<void> {
    await Promise.all(this.partitions.map((queue) => queue.pause()));
  }

  async resume(): Promise<void> {
    await Promise.all(this.partitions.map((queue) => queue.resume()));
  }

  on(event: 'error', listener: (error: Error) => void): void {
    for (const queue of this.partitions) queue.on(event, listener);
  }

  async close(): Promise<void> {
    await Promise.all(this.partitions.map((queue) => queue.close()));
  }
}
