/**
 * `IngestWorker`: the billing process's document ingestion — a BullMQ worker on the 'ingest' queue (INGEST_CONCURRENCY
 * documents at once) and a poller that queues every `documents` row the product's app inserted as 'pending' (on
 * start, then every `pollIntervalMs`), plus rows left 'processing' by a crashed run. A document that can never be
 * ingested (missing or unreadable file, unsupported type, too large, no text, over its budget — INGEST_MAX_CHARS,
 * INGEST_MAX_CHUNKS, INGEST_TIMEOUT_MS, INGEST_MEMORY_MB —, the provider refusing) fails at once: 'failed' with its
 * reason, and an UnrecoverableError so the queue moves on. A provider outage is retried with backoff (the SDK's
 * retries inside one attempt, the queue's between attempts) and fails the document after the last.
 */
import { UnrecoverableError, Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { DocumentError } from '#billing/ingest/document-error.ts';
import { ingestBudget } from '#billing/ingest/ingest-budget.ts';
import { ingestDocument, markDocumentFailed, type IngestOutcome } from '#billing/ingest/ingest-document.ts';
import {
  createIngestQueue,
  enqueueDocument,
  INGEST_QUEUE,
  ingestJobSchema,
  type IngestQueueOptions,
} from '#billing/ingest/ingest-queue.ts';
import type { Embedder } from '#shared/embeddings/embedder.ts';
import { EmbeddingError } from '#shared/embeddings/embedding-error.ts';

export interface IngestWorkerOptions {
  config: Pick<
    Config,
    | 'INGEST_CONCURRENCY'
    | 'UPLOAD_DIR'
    | 'MAX_UPLOAD_BYTES'
    | 'CHUNK_TOKENS'
    | 'CHUNK_OVERLAP_TOKENS'
    | 'INGEST_MAX_CHARS'
    | 'INGEST_MAX_CHUNKS'
    | 'INGEST_TIMEOUT_MS'
    | 'INGEST_MEMORY_MB'
  >;
  db: Kysely<Database>;
  /** `createEmbedder(config)`: OpenAI with a key, the local hashing embedder without. */
  embedder: Embedder;
  /** BullMQ connection: ioredis options or an ioredis instance, with `maxRetriesPerRequest: null`. Not closed by `close()`. */
  connection: ConnectionOptions;
  /** BullMQ key prefix, `ingestQueuePrefix(REDIS_PREFIX)`; must match the producers'. */
  prefix: string;
  /** How often pending documents are looked for; default 5000 ms. */
  pollIntervalMs?: number;
  /**
   * A document 'processing' untouched this long (updated_at, which a trigger keeps) is queued again: its run died and
   * its job was lost. A job still there for it makes this a no-op. Default 10 minutes.
   */
  staleProcessingMs?: number;
  /** Attempts and backoff of the jobs the poller queues; default 5 attempts from 5 s. */
  retry?: IngestQueueOptions;
  /** Default: no logging. */
  logger?: Logger;
}

/** Most rows queued per poll; the rest are found by the next one. */
const POLL_BATCH = 500;

export class IngestWorker {
  readonly #options: IngestWorkerOptions;
  #worker: Worker | undefined;
  #queue: Queue | undefined;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #closing = false;

  constructor(options: IngestWorkerOptions) {
    this.#options = options;
  }

  /** The queue the poller adds to (a `createIngestQueue` queue); available after `start()`. */
  get queue(): Queue {
    if (!this.#queue) throw new Error('IngestWorker is not started');
    return this.#queue;
  }

  /** Connects and starts taking jobs; the first look for pending documents starts now (not awaited), then every interval. */
  async start(): Promise<void> {
    if (this.#worker) return;
    const { connection, prefix, config, logger } = this.#options;
    this.#closing = false;
    this.#queue = createIngestQueue(connection, prefix, this.#options.retry);
    const worker = new Worker(INGEST_QUEUE, (job, _token, signal) => this.#process(job, signal), {
      connection,
      prefix,
      concurrency: config.INGEST_CONCURRENCY,
    });
    this.#worker = worker;
    worker.on('error', (error) => logger?.error({ err: error }, 'ingest worker error'));
    worker.on('failed', (job, error) =>
      logger?.warn({ err: error, jobId: job?.id, attemptsMade: job?.attemptsMade }, 'ingest job failed'),
    );
    await worker.waitUntilReady();
    void this.#poll().finally(() => this.#schedule());
  }

  /** Stops polling, aborts the running ingestions (their jobs are retried later) and closes the worker and queue. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#timer);
    await this.#polling;
    const worker = this.#worker;
    const queue = this.#queue;
    this.#worker = undefined;
    this.#queue = undefined;
    worker?.cancelAllJobs('ingest worker closing');
    await worker?.close();
    await queue?.close();
  }

  /** Queues every pending document, and every one left 'processing' past `staleProcessingMs`; returns how many. */
  async pollOnce(): Promise<number> {
    const { db } = this.#options;
    const staleSeconds = (this.#options.staleProcessingMs ?? 600_000) / 1000;
    const rows = await db
      .selectFrom('documents')
      .select('id')
      .where((eb) =>
        eb.or([
          eb('processing_status', '=', 'pending'),
          eb.and([
            eb('processing_status', '=', 'processing'),
            eb('updated_at', '<', sql<Date>`now() - make_interval(secs => ${staleSeconds})`),
          ]),
        ]),
      )
      .orderBy('updated_at')
      .limit(POLL_BATCH)
      .execute();
    for (const row of rows) await enqueueDocument(this.queue, row.id);
    return rows.length;
  }

  #schedule(): void {
    if (this.#closing) return;
    this.#timer = setTimeout(() => {
      void this.#poll().finally(() => this.#schedule());
    }, this.#options.pollIntervalMs ?? 5000);
  }

  #poll(): Promise<void> {
    this.#polling = this.pollOnce().then(
      (count) => {
        if (count > 0) this.#options.logger?.debug({ count }, 'queued pending documents');
      },
      (error: unknown) => this.#options.logger?.warn({ err: error }, 'polling pending documents failed'),
    );
    return this.#polling;
  }

  async #process(job: Job, signal: AbortSignal | undefined): Promise<IngestOutcome> {
    const { db, embedder, config, logger } = this.#options;
    const parsed = ingestJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid ingest payload: ${parsed.error.message}`);
    const { documentId } = parsed.data;
    try {
      const outcome = await ingestDocument(db, documentId, {
        embedder,
        uploadDir: config.UPLOAD_DIR,
        maxUploadBytes: config.MAX_UPLOAD_BYTES,
        chunkTokens: config.CHUNK_TOKENS,
        overlapTokens: config.CHUNK_OVERLAP_TOKENS,
        budget: ingestBudget(config),
        ...(signal ? { signal } : {}),
      });
      logger?.info({ documentId, ...outcome }, 'document ingested');
      return outcome;
    } catch (error) {
      // Closing: not the document's fault; the job is tried again (or the stale sweep queues it).
      if (signal?.aborted) throw error;
      const permanent = error instanceof DocumentError || (error instanceof EmbeddingError && error.permanent);
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (!permanent && !lastAttempt) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      await markDocumentFailed(db, documentId, reason);
      logger?.warn({ documentId, reason, attemptsMade: job.attemptsMade + 1 }, 'document ingestion failed');
      if (permanent) throw new UnrecoverableError(reason);
      throw error;
    }
  }
}
