/**
 * `failedBillingJobs(queues)`: the billing queue's failed sets (every partition) as the reconciliation reports it — each job that failed
 * for good, the sessions its facts belong to and why. Its facts were never written: they are lost until a person
 * retries or repairs them.
 */
import type { BillingQueues } from '#shared/contract/billing-queue.ts';
import type { FailedBillingJob } from '#billing/ledger/reconciliation.ts';

/** Most failed jobs read (the queue depth metric counts them all). */
const MAX_FAILED_JOBS = 1000;

export async function failedBillingJobs(queues: BillingQueues, limit = MAX_FAILED_JOBS): Promise<FailedBillingJob[]> {
  const jobs = await queues.getFailed(limit);
  return jobs
    .filter((job) => job !== undefined && job !== null)
    .map((job) => ({
      id: String(job.id),
      name: job.name,
      sessionIds: [...new Set(sessionIdsOf(job.data))].sort(),
      failedReason: job.failedReason ?? '',
      failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    }));
}

/** The session ids a job's data names: `session.sessionId`, or each batched fact's. The data may be malformed. */
function sessionIdsOf(data: unknown): string[] {
  if (typeof data !== 'object' || data === null) return [];
  const facts = (data as { facts?: unknown }).facts;
  if (Array.isArray(facts)) return facts.flatMap((fact) => sessionIdsOf((fact as { data?: unknown } | null)?.data));
  const sessionId = (data as { session?: { sessionId?: unknown } }).session?.sessionId;
  return typeof sessionId === 'string' ? [sessionId] : [];
}
