/** Billing jobs into the BullMQ billing queue; deterministic job ids make a repeated add a no-op. */
import type { Queue } from 'bullmq';
import type { BillingJob } from './outbox-jobs.ts';
import type { BillingJobSink } from './outbox-relay.ts';

export class QueueJobSink implements BillingJobSink {
  constructor(private readonly queue: Queue) {}

  async addJobs(jobs: BillingJob[]): Promise<void> {
    await this.queue.addBulk(jobs.map((job) => ({ name: job.name, data: job.data, opts: { jobId: job.jobId } })));
  }
}
