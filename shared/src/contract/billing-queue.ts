/**
 * The billing queue as its producers (the gateway's relay) open it: BullMQ queue `billing` under
 * `queuePrefix(REDIS_PREFIX)`; jobs retry 10 times with exponential backoff, completed ones are kept a day (their ids
 * deduplicate a relayed fact), failed ones are kept for a person to look at (the reconciliation reports them).
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import { BILLING_QUEUE } from './billing-jobs.ts';

export function createBillingQueue(connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(BILLING_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 86_400, count: 10_000 },
      removeOnFail: false,
    },
  });
}
