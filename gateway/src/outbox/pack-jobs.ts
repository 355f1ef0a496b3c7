/**
 * Packs billing jobs into few queue jobs (`packJobs`) for the relay: `fact-batch` jobs named by their facts' ids, so
 * the same facts relayed again make the same job (and if a fact lands in two different batches, the worker applies
 * it once).
 */
import {
  BATCHED_FACT_NAMES,
  MAX_BATCH_FACTS,
  billingJobId,
  type BatchedFactName,
  type BillingJobName,
  type FactBatchJob,
} from '#shared/contract/billing-jobs.ts';
import type { BillingJob } from '#shared/live-state/outbox-jobs.ts';

/** A job as BullMQ's `addBulk` takes it. */
export interface QueueJob {
  name: BillingJobName;
  data: unknown;
  opts: { jobId: string; removeOnComplete?: { age: number; count: number } };
}

/**
 * Completed batches are kept for an hour (at most 1 000): they are bigger than single jobs, and their ids only
 * deduplicate a relay of the very same group of facts, which the worker absorbs anyway.
 */
const BATCH_RETENTION = { age: 3_600, count: 1_000 };

const isBatched = (job: BillingJob): job is BillingJob<BatchedFactName> =>
  (BATCHED_FACT_NAMES as readonly string[]).includes(job.name);

/**
 * The queue jobs carrying `jobs`: `fact-batch` jobs of at most `maxFacts` facts, named by their facts' ids —
 * settlements batched only with settlements, since each is a transaction on shared rows that the worker runs apart
 * from the other facts. A fact given twice is carried once; a batch of one is queued as the fact's own job (a lone
 * settlement is `settle_<sessionId>`).
 */
export function packJobs(jobs: readonly BillingJob[], maxFacts = MAX_BATCH_FACTS): QueueJob[] {
  const seen = new Set<string>();
  const single: QueueJob[] = [];
  const facts: BillingJob<BatchedFactName>[] = [];
  const settlements: BillingJob<BatchedFactName>[] = [];
  for (const job of jobs) {
    if (seen.has(job.jobId)) continue;
    seen.add(job.jobId);
    if (!isBatched(job)) single.push({ name: job.name, data: job.data, opts: { jobId: job.jobId } });
    else if (job.name === 'settle-session') settlements.push(job);
    else facts.push(job);
  }
  // facts first: a session's messages and states are usually stored before its settlement runs
  return [...batch(facts, maxFacts), ...batch(settlements, maxFacts), ...single];
}

function batch(jobs: readonly BillingJob<BatchedFactName>[], maxFacts: number): QueueJob[] {
  const queued: QueueJob[] = [];
  for (let from = 0; from < jobs.length; from += maxFacts) {
    const chunk = jobs.slice(from, from + maxFacts);
    if (chunk.length === 1) {
      const [job] = chunk;
      queued.push({ name: job!.name, data: job!.data, opts: { jobId: job!.jobId } });
      continue;
    }
    const data: FactBatchJob = { facts: chunk.map((job) => ({ name: job.name, id: job.jobId, data: job.data })) };
    queued.push({
      name: 'fact-batch',
      data,
      opts: { jobId: billingJobId.factBatch(chunk.map((job) => job.jobId)), removeOnComplete: BATCH_RETENTION },
    });
  }
  return queued;
}
