/**
 * The 'ingest' BullMQ queue: one job per document, with the deterministic id `doc_<documentId>`, so a document is
 * queued at most once at a time however often it is asked for (by the upload endpoint, the pending-row poller, or
 * several billing processes). The billing process works it off (billing/src/ingest/ingest-worker.ts).
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '#shared/db/schema.ts';

export const INGEST_QUEUE = 'ingest';
const INGEST_JOB = 'ingest-document';

export const ingestJobSchema = z.object({ documentId: z.guid() });
export type IngestJobData = z.infer<typeof ingestJobSchema>;

export function ingestJobId(documentId: string): string {
  return `doc_${documentId}`;
}

export interface IngestQueueOptions {
  /** Tries per job (provider outages); default 5. */
  attempts?: number;
  /** First retry delay in ms, doubling each time; default 5000. */
  backoffMs?: number;
}

/**
 * A queue for producers and the poller: jobs retry with exponential backoff; completed jobs are removed (so the same
 * document can be queued again), failed ones kept a week for inspection (`enqueueDocument` replaces them).
 * `prefix` is `ingestQueuePrefix(REDIS_PREFIX)`, as the worker's.
 */
export function createIngestQueue(connection: ConnectionOptions, prefix: string, options: IngestQueueOptions = {}): Queue {
  return new Queue(INGEST_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: options.attempts ?? 5,
      backoff: { type: 'exponential', delay: options.backoffMs ?? 5000 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 86_400, count: 10_000 },
    },
  });
}

/**
 * Queues the ingestion of one document (a queue from `createIngestQueue`). A job already waiting, delayed or running
 * for it is left as it is (no duplicate); a finished one kept from before is replaced. The job ingests the row only
 * while it is 'pending' (or being processed): to ingest a completed or failed document again, use `reingestDocument`.
 */
export async function enqueueDocument(queue: Queue, documentId: string): Promise<void> {
  const { documentId: id } = ingestJobSchema.parse({ documentId });
  const jobId = ingestJobId(id);
  const existing = await queue.getJob(jobId);
  if (existing) {
    const state = await existing.getState();
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return;
    // Removed meanwhile by its retention, or by a concurrent enqueue: the add below is what matters.
    await existing.remove().catch(() => undefined);
  }
  await queue.add(INGEST_JOB, { documentId: id } satisfies IngestJobData, { jobId });
}

/**
 * Sets a document back to 'pending' (whatever its state) and queues it: its chunks are rebuilt from its file, and
 * replaced in one transaction when done. A run already in progress finds the row pending again and leaves the result
 * to the next run. Returns false when there is no such document.
 */
export async function reingestDocument(db: Kysely<Database>, queue: Queue, documentId: string): Promise<boolean> {
  const result = await db
    .updateTable('documents')
    .set({ processing_status: 'pending', failure_reason: null })
    .where('id', '=', documentId)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) return false;
  await enqueueDocument(queue, documentId);
  return true;
}
