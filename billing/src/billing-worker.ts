/**
 * The billing worker: consumes the billing queue (BullMQ, at-least-once delivery) and applies each job
 * idempotently to Postgres. A payload that fails its zod schema, an unknown job name, or a job that can
 * never succeed fails at once (UnrecoverableError); anything else is retried with backoff.
 */
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '#shared/config/config.ts';
import {
  BILLING_QUEUE,
  billingJobSchemas,
  type BillingJobData,
  type BillingJobName,
  type SettlementResult,
} from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { BillingMetrics, QUEUE_DEPTH_STATES, type BillingJobResult } from './billing-metrics.ts';
import { applySessionCheckpoint, applySessionState } from './settle/apply-session-state.ts';
import { BillingJobError } from './settle/billing-job-error.ts';
import { settleSession } from './settle/settle-session.ts';
import { storeMessage } from './settle/store-message.ts';

/** A queue for producers (the gateway): jobs retry 10 times with exponential backoff; failed jobs are kept. */
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

export interface BillingWorkerOptions {
  /** BILLING_CONCURRENCY (jobs at once) and platformFeeRate (the platform's share of each charge). */
  config: Pick<Config, 'BILLING_CONCURRENCY' | 'platformFeeRate'>;
  db: Kysely<Database>;
  /** BullMQ connection: ioredis options or an ioredis instance, with `maxRetriesPerRequest: null`. Not closed by `close()`. */
  connection: ConnectionOptions;
  /** BullMQ key prefix, e.g. `${config.REDIS_PREFIX}:bull`; must match the producers'. */
  prefix: string;
  /**
   * Called after every settle job, whether it settled now or found the settlement done before. If it throws,
   * the job is retried: the settlement is not repeated, the hook is called again (at-least-once).
   */
  onSettled?: (result: SettlementResult) => Promise<void>;
  /** Registry for the metrics. Default: a new one (see `registry`). */
  registry?: Registry;
  /** Default: no logging. */
  logger?: Logger;
}

/** Raised inside the processor for payloads that can never be processed. */
function unrecoverable(message: string, cause?: unknown): UnrecoverableError {
  const error = new UnrecoverableError(message);
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** The payload checked against its job's schema; a payload that fails can never succeed. */
function validate<N extends BillingJobName>(name: N, data: unknown): BillingJobData<N> {
  const parsed = billingJobSchemas[name].safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw unrecoverable(`invalid ${name} payload: ${issues}`);
  }
  return parsed.data as BillingJobData<N>;
}

/** Postgres error classes 22 (data exception: overflow, bad value) and 23 (integrity) do not heal on retry. */
function isPermanentDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

export class BillingWorker {
  readonly registry: Registry;
  readonly metrics: BillingMetrics;
  #worker: Worker | undefined;
  #queue: Queue | undefined;
  readonly #options: BillingWorkerOptions;

  constructor(options: BillingWorkerOptions) {
    this.#options = options;
    this.registry = options.registry ?? new Registry();
    this.metrics = new BillingMetrics(this.registry, async () =>
      this.#queue ? this.#queue.getJobCounts(...QUEUE_DEPTH_STATES) : {},
    );
  }

  /** Connects and starts taking jobs; resolves once the worker is connected. */
  async start(): Promise<void> {
    if (this.#worker) return;
    const { connection, prefix, config, logger } = this.#options;
    this.#queue = new Queue(BILLING_QUEUE, { connection, prefix });
    const worker = new Worker(BILLING_QUEUE, (job) => this.#process(job), {
      connection,
      prefix,
      concurrency: config.BILLING_CONCURRENCY,
      // Every job is idempotent, so a job whose lock was lost may safely run again; a job stalled by repeated worker
      // crashes must not be failed for good (a message job has no reconciler to rescue it).
      maxStalledCount: 1000,
    });
    this.#worker = worker;
    worker.on('error', (error) => logger?.error({ err: error }, 'billing worker error'));
    worker.on('failed', (job, error) =>
      logger?.warn(
        { err: error, jobId: job?.id, name: job?.name, attemptsMade: job?.attemptsMade },
        'billing job failed',
      ),
    );
    await worker.waitUntilReady();
  }

  /** Stops taking jobs, waits for the running ones, and closes the worker's own connections. */
  async close(): Promise<void> {
    const worker = this.#worker;
    const queue = this.#queue;
    this.#worker = undefined;
    this.#queue = undefined;
    await worker?.close();
    await queue?.close();
  }

  async #process(job: Job): Promise<unknown> {
    const known = Object.hasOwn(billingJobSchemas, job.name);
    const label = known ? job.name : 'unknown';
    try {
      const [result, value] = await this.#dispatch(job);
      this.metrics.jobs.inc({ name: label, result });
      return value;
    } catch (error) {
      const invalid = error instanceof UnrecoverableError;
      this.metrics.jobs.inc({ name: label, result: invalid ? 'invalid' : 'error' });
      throw error;
    }
  }

  async #dispatch(job: Job): Promise<[BillingJobResult, unknown]> {
    const { db, config, logger } = this.#options;
    try {
      switch (job.name) {
        case 'settle-session': {
          const data = validate('settle-session', job.data);
          const result = await settleSession(db, data, config.platformFeeRate, logger ? { log: logger } : {});
          if (result.applied) {
            this.metrics.settleLatency.observe(Math.max(0, (Date.now() - Date.parse(data.endTime)) / 1000));
          }
          await this.#options.onSettled?.(result);
          return [result.applied ? 'ok' : 'duplicate', result];
        }
        case 'session-state': {
          const applied = await applySessionState(db, validate('session-state', job.data));
          return [applied ? 'ok' : 'stale', { applied }];
        }
        case 'session-checkpoint': {
          const applied = await applySessionCheckpoint(db, validate('session-checkpoint', job.data));
          return [applied ? 'ok' : 'stale', { applied }];
        }
        case 'message': {
          const stored = await storeMessage(db, validate('message', job.data));
          return [stored ? 'ok' : 'duplicate', { stored }];
        }
        default:
          throw unrecoverable(`unknown billing job name ${JSON.stringify(job.name)}`);
      }
    } catch (error) {
      if (error instanceof BillingJobError) throw unrecoverable(`${error.code}: ${error.message}`, error);
      if (isPermanentDatabaseError(error)) {
        throw unrecoverable(`database refused ${job.name} job: ${(error as Error).message}`, error);
      }
      throw error;
    }
  }
}
