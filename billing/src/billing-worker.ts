/**
 * The billing worker: consumes the billing queue (BullMQ, at-least-once delivery) and applies each job
 * idempotently to Postgres. A payload that fails its zod schema, an unknown job name, or a job that can
 * never succeed fails at once (UnrecoverableError); anything else is retried with backoff.
 *
 * The jobs it runs at once share their Postgres work (group commit): the messages, states and checkpoints they carry
 * (a `fact-batch` job carries many) are written by one `writeFacts`, and their settlements by one `settleSessions`
 * transaction. A job completes only when the transactions holding its work have committed, so a crash loses nothing;
 * a group that fails is split up, so one bad fact or session never fails the others, and a settlement whose user is
 * busy waits on its own.
 */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { billingQueuePrefix } from '#shared/live-state/keys.ts';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '#shared/config/config.ts';
import {
  BILLING_QUEUE,
  billingJobSchemas,
  type BatchedFactName,
  type BillingJobData,
  type BillingJobName,
  type SettleSessionJob,
  type SettlementResult,
} from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { BillingMetrics, QUEUE_DEPTH_STATES, type BillingJobResult } from './billing-metrics.ts';
import { failedBillingJobs } from './failed-billing-jobs.ts';
import type { FailedBillingJob } from './ledger/reconciliation.ts';
import { GroupCommit } from '#shared/concurrency/group-commit.ts';
import { Semaphore } from '#shared/concurrency/semaphore.ts';
import { BillingJobError } from './settle/billing-job-error.ts';
import { settleSession } from './settle/settle-session.ts';
import { settleSessions, waitForUser, type SettleOutcome } from './settle/settle-sessions.ts';
import { writeFacts, type Fact, type FactOutcome } from './settle/write-facts.ts';

/** A fact's outcome, or the error its write failed with (the database refused it, or is unreachable). */
type FactResult = FactOutcome | { failure: unknown };

/** A settlement's result, or the error that stopped it (a BillingJobError, a database error). */
type SettleResult = { result: SettlementResult } | { failure: unknown };

/**
 * Jobs the worker holds at once, per unit of BILLING_CONCURRENCY. A held job waiting for its group's transaction costs
 * no connection, so the worker holds more jobs than it runs transactions: BILLING_CONCURRENCY bounds its Postgres
 * transactions (fact writes, the settlement batch, settlements waiting alone on a busy user), and BullMQ hands it this
 * many times as many jobs to group into them.
 */
const JOBS_PER_TRANSACTION = 16;

/** The partition watchdog looks every two job-lock lifetimes, never more often than this. */
const WATCHDOG_MIN_MS = 5000;

/** Most facts one group commit writes. */
const MAX_FACTS_PER_WRITE = 2_000;
/** Most settlements one transaction makes. */
const MAX_SETTLEMENTS_PER_TRANSACTION = 500;

export interface BillingWorkerOptions {
  /**
   * BILLING_CONCURRENCY (Postgres transactions at once; the worker holds JOBS_PER_TRANSACTION times as many jobs) and
   * platformFeeRate (the platform's share of each charge); METRICS_CACHE_MS (how long a scrape reuses the queue's job
   * counts; default 0, read on every scrape).
   */
  config: Pick<Config, 'BILLING_CONCURRENCY' | 'BILLING_LOCK_MS' | 'platformFeeRate'> & Partial<Pick<Config, 'METRICS_CACHE_MS'>>;
  db: Kysely<Database>;
  /** BullMQ connection: ioredis options or an ioredis instance, with `maxRetriesPerRequest: null`. Not closed by `close()`. */
  connection: ConnectionOptions;
  /** REDIS_PREFIX: the worker takes jobs from every partition of the billing queue under it (BillingQueues). */
  redisPrefix: string;
  /**
   * Called after every settlement a job carries (a settle job, or each in a batch), whether it settled now or found
   * the settlement done before. If it throws, the job is retried: the settlements are not repeated, the hook is
   * called again (at-least-once).
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

/** The payload checked against its job's schema, or what is wrong with it. */
function parse<N extends BillingJobName>(name: N, data: unknown): { data: BillingJobData<N> } | { issues: string } {
  const parsed = billingJobSchemas[name].safeParse(data);
  if (parsed.success) return { data: parsed.data as BillingJobData<N> };
  return { issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

/** The payload checked against its job's schema; a payload that fails can never succeed. */
function validate<N extends BillingJobName>(name: N, data: unknown): BillingJobData<N> {
  const parsed = parse(name, data);
  if ('issues' in parsed) throw unrecoverable(`invalid ${name} payload: ${parsed.issues}`);
  return parsed.data;
}

/** Postgres error classes 22 (data exception: overflow, bad value) and 23 (integrity) do not heal on retry. */
function isPermanentDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

export class BillingWorker {
  readonly registry: Registry;
  readonly metrics: BillingMetrics;
  /** One BullMQ worker per partition of the billing queue. */
  #workers: Worker[] = [];
  /** Jobs each partition's worker has taken, those it runs now, and what the last watchdog check saw (#watchPartitions). */
  #taken: number[] = [];
  #running: number[] = [];
  #lastCheck: Array<{ taken: number; waiting: boolean }> = [];
  #watchdog: NodeJS.Timeout | undefined;
  #queues: BillingQueues | undefined;
  readonly #options: BillingWorkerOptions;
  /** The facts of the running jobs, written together, a few writes at once. */
  readonly #facts: GroupCommit<Fact[], FactResult[]>;
  /** The settlements of the running jobs, one transaction at a time (they share user and clone rows). */
  readonly #settlements: GroupCommit<SettleSessionJob, SettleOutcome>;
  /** Settlements running alone (deferred by their group), each holding a connection while it waits for its user. */
  readonly #alone: Semaphore;

  constructor(options: BillingWorkerOptions) {
    this.#options = options;
    this.registry = options.registry ?? new Registry();
    this.metrics = new BillingMetrics(
      this.registry,
      async () => (this.#queues ? this.#queues.getJobCounts(...QUEUE_DEPTH_STATES) : {}),
      options.config.METRICS_CACHE_MS,
    );
    // BILLING_CONCURRENCY transactions at once: half of them fact writes (they only share session rows, locked in id
    // order), one settlement batch (settlements share user and clone rows), the rest settlements alone.
    const transactions = options.config.BILLING_CONCURRENCY;
    this.#facts = new GroupCommit((groups) => this.#writeFactGroups(groups), {
      maxInFlight: Math.max(1, Math.floor(transactions / 2)),
      maxWeight: MAX_FACTS_PER_WRITE,
      weight: (facts) => facts.length,
    });
    this.#settlements = new GroupCommit((jobs) => this.#settleGroup(jobs), {
      maxInFlight: 1,
      maxWeight: MAX_SETTLEMENTS_PER_TRANSACTION,
    });
    this.#alone = new Semaphore(Math.max(1, transactions - Math.floor(transactions / 2) - 1));
  }

  /** Connects and starts taking jobs from every partition; resolves once the workers are connected. */
  async start(): Promise<void> {
    if (this.#queues) return;
    const { connection, redisPrefix, config, logger } = this.#options;
    this.#queues = new BillingQueues(connection, redisPrefix);
    this.#workers = this.#queues.partitions.map((_, partition) => this.#partitionWorker(partition));
    this.#taken = this.#workers.map(() => 0);
    this.#running = this.#workers.map(() => 0);
    this.#lastCheck = this.#workers.map(() => ({ taken: 0, waiting: false }));
    await Promise.all(this.#workers.map((worker) => worker.waitUntilReady()));
    const everyMs = Math.max(WATCHDOG_MIN_MS, 2 * config.BILLING_LOCK_MS);
    this.#watchdog = setInterval(() => {
      this.#watchPartitions().catch((error: unknown) => logger?.warn({ err: error }, 'billing worker watchdog check failed'));
    }, everyMs);
    this.#watchdog.unref();
  }

  /** A BullMQ worker of one partition, taking its jobs into this process. */
  #partitionWorker(partition: number): Worker {
    const { connection, redisPrefix, config, logger } = this.#options;
    // each partition's worker may hold the whole process's share of jobs: the group commits and the semaphore below
    // bound the Postgres work of all of them together, so a partition busier than the rest is not held back
    const worker = new Worker(BILLING_QUEUE, async (job) => {
      this.#taken[partition] = (this.#taken[partition] ?? 0) + 1;
      this.#running[partition] = (this.#running[partition] ?? 0) + 1;
      try {
        return await this.#process(job);
      } finally {
        this.#running[partition] = (this.#running[partition] ?? 1) - 1;
      }
    }, {
      connection,
      prefix: billingQueuePrefix(redisPrefix, partition),
      // stored on every job it runs (job.processedBy): which process holds or ran a job
      name: `billing:${hostname()}:${process.pid}`,
      concurrency: config.BILLING_CONCURRENCY * JOBS_PER_TRANSACTION,
      // Every job is idempotent, so a job whose lock was lost may safely run again; a job stalled by repeated worker
      // crashes must not be failed for good (a message job has no reconciler to rescue it).
      maxStalledCount: 1000,
      lockDuration: config.BILLING_LOCK_MS,
      stalledInterval: config.BILLING_LOCK_MS,
    });
    worker.on('error', (error) => logger?.error({ err: error }, 'billing worker error'));
    worker.on('failed', (job, error) =>
      logger?.warn(
        { err: error, jobId: job?.id, name: job?.name, attemptsMade: job?.attemptsMade },
        'billing job failed',
      ),
    );
    return worker;
  }

  /**
   * A partition's worker that took no job across two checks, running none, while its partition had jobs waiting at
   * both is recreated (one busy with jobs that wait, for a lock say, is not stuck). After a Redis failover (or restart) BullMQ's worker can stay waiting on a blocking connection that
   * never comes back, without an error (taskforcesh/bullmq#3088, #2964); its maintainers' advice is this. The old
   * worker is closed without waiting: jobs it still runs lose their locks and run again elsewhere (idempotent).
   */
  async #watchPartitions(): Promise<void> {
    const queues = this.#queues;
    if (!queues) return;
    await Promise.all(queues.partitions.map(async (queue, partition) => {
      const counts = await queue.getJobCounts('waiting', 'prioritized');
      const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0) > 0;
      const taken = this.#taken[partition] ?? 0;
      const last = this.#lastCheck[partition]!;
      const stuck = waiting && last.waiting && taken === last.taken && this.#running[partition] === 0;
      this.#lastCheck[partition] = { taken, waiting };
      if (!stuck || this.#queues !== queues) return;
      this.#options.logger?.warn({ partition, waiting: counts }, 'billing worker took no job while jobs waited; recreating it');
      this.metrics.workerRestarts.inc();
      const old = this.#workers[partition]!;
      this.#workers[partition] = this.#partitionWorker(partition);
      this.#lastCheck[partition] = { taken, waiting: false };
      await old.close(true).catch(() => undefined);
    }));
  }

  /** The BullMQ worker of each partition, by partition (the watchdog replaces a stuck one). */
  partitionWorkers(): readonly Worker[] {
    return this.#workers;
  }

  /** The jobs that failed for good (their facts were never written), for the reconciliation. */
  async failedJobs(): Promise<FailedBillingJob[]> {
    return this.#queues ? failedBillingJobs(this.#queues) : [];
  }

  /** Stops taking jobs, waits for the running ones, and closes the worker's own connections. */
  async close(): Promise<void> {
    const workers = this.#workers;
    const queues = this.#queues;
    clearInterval(this.#watchdog);
    this.#workers = [];
    this.#queues = undefined;
    await Promise.all(workers.map((worker) => worker.close()));
    await queues?.close();
  }

  async #process(job: Job): Promise<unknown> {
    const known = Object.hasOwn(billingJobSchemas, job.name);
    const label = known ? job.name : 'unknown';
    try {
      const [result, value] = await this.#dispatch(job);
      // a batch is counted by its facts (billing_jobs_total keeps counting messages, states, checkpoints)
      if (job.name !== 'fact-batch') this.metrics.jobs.inc({ name: label, result });
      return value;
    } catch (error) {
      const invalid = error instanceof UnrecoverableError;
      this.metrics.jobs.inc({ name: label, result: invalid ? 'invalid' : 'error' });
      throw error;
    }
  }

  async #dispatch(job: Job): Promise<[BillingJobResult, unknown]> {
    try {
      switch (job.name) {
        case 'settle-session': {
          const { results, hookFailure } = await this.#settleAll([validate('settle-session', job.data)]);
          const [settled] = results;
          if (!settled) throw new Error('no outcome for the settlement');
          if ('failure' in settled) throw settled.failure;
          if (hookFailure !== undefined) throw hookFailure;
          return [settled.result.applied ? 'ok' : 'duplicate', settled.result];
        }
        case 'session-state':
        case 'session-checkpoint':
        case 'message': {
          const name = job.name as BatchedFactName;
          const [result] = await this.#facts.submit([{ name, data: validate(name, job.data) } as Fact]);
          if (!result) throw new Error('no outcome for the fact');
          if ('error' in result) throw result.error;
          if ('failure' in result) throw result.failure;
          const label = result.written ? 'ok' : name === 'message' ? 'duplicate' : 'stale';
          return [label, name === 'message' ? { stored: result.written } : { applied: result.written }];
        }
        case 'fact-batch':
          return await this.#factBatch(validate('fact-batch', job.data));
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

  /**
   * Settlements, in the running group's transaction; those it deferred (their user was busy, or the group failed as a
   * whole) then one by one, each after waiting for its user while holding nothing. Then `onSettled` for every
   * settlement made or found: a failing hook is reported, so the job is retried (the settlements are not repeated).
   */
  async #settleAll(jobs: SettleSessionJob[]): Promise<{ results: SettleResult[]; hookFailure?: unknown }> {
    const { db, config, logger, onSettled } = this.#options;
    const outcomes = await Promise.all(
      jobs.map((job) => this.#settlements.submit(job).catch((failure: unknown): SettleResult => ({ failure }))),
    );
    const results: SettleResult[] = [];
    for (const [i, outcome] of outcomes.entries()) {
      if ('result' in outcome || 'failure' in outcome) results.push(outcome);
      else if ('error' in outcome) results.push({ failure: outcome.error });
      else {
        const job = jobs[i]!;
        try {
          const result = await this.#alone.run(async () => {
            await waitForUser(db, job.session.userId);
            return settleSession(db, job, config.platformFeeRate, logger ? { log: logger } : {});
          });
          results.push({ result });
        } catch (failure) {
          results.push({ failure });
        }
      }
    }
    const now = Date.now();
    results.forEach((settled, i) => {
      if ('result' in settled && settled.result.applied) {
        this.metrics.settleLatency.observe(Math.max(0, (now - Date.parse(jobs[i]!.endTime)) / 1000));
      }
    });
    if (!onSettled) return { results };
    const hooks = await Promise.allSettled(results.flatMap((settled) => ('result' in settled ? [onSettled(settled.result)] : [])));
    const failed = hooks.find((hook) => hook.status === 'rejected');
    return failed ? { results, hookFailure: failed.reason } : { results };
  }

  async #settleGroup(jobs: SettleSessionJob[]): Promise<SettleOutcome[]> {
    const { db, config, logger } = this.#options;
    try {
      return await settleSessions(db, jobs, config.platformFeeRate, { skipLockedUsers: true, ...(logger ? { log: logger } : {}) });
    } catch (error) {
      if (jobs.length === 1) throw error;
      // Each job settles alone, in its own slot, and meets its own error if it has one.
      logger?.warn({ err: error, settlements: jobs.length }, 'settlement batch failed; settling its sessions one by one');
      return jobs.map(() => ({ deferred: true }));
    }
  }

  async #writeFactGroups(groups: Fact[][]): Promise<FactResult[][]> {
    const { db, logger } = this.#options;
    const all = groups.flat();
    let results: FactResult[];
    try {
      results = await writeFacts(db, all);
    } catch (error) {
      if (all.length === 1) throw error;
      logger?.warn({ err: error, facts: all.length }, 'writing a batch of facts failed; writing them one by one');
      results = [];
      for (const fact of all) {
        try {
          results.push(...(await writeFacts(db, [fact])));
        } catch (failure) {
          results.push({ failure });
        }
      }
    }
    let from = 0;
    return groups.map((group) => results.slice(from, (from += group.length)));
  }

  /**
   * Every fact of the batch is applied unless it is invalid or refused; those fail the job for good once the others
   * are written (it stays in the failed set for a person to look at). A failure that may heal (or a failing
   * `onSettled`) retries the job: what was written already is absorbed on the retry.
   */
  async #factBatch(batch: BillingJobData<'fact-batch'>): Promise<[BillingJobResult, unknown]> {
    const facts: { id: string; fact: Fact }[] = [];
    const settlements: { id: string; job: SettleSessionJob }[] = [];
    const refused: string[] = [];
    for (const fact of batch.facts) {
      const parsed = parse(fact.name, fact.data);
      if ('issues' in parsed) {
        this.metrics.jobs.inc({ name: fact.name, result: 'invalid' });
        refused.push(`${fact.id}: invalid ${fact.name} payload: ${parsed.issues}`);
      } else if (fact.name === 'settle-session') {
        settlements.push({ id: fact.id, job: parsed.data as SettleSessionJob });
      } else {
        facts.push({ id: fact.id, fact: { name: fact.name, data: parsed.data } as Fact });
      }
    }
    const counts = { written: 0, unchanged: 0 };
    let retry: unknown;
    const failed = (name: BatchedFactName, id: string, failure: unknown) => {
      if (failure instanceof BillingJobError || isPermanentDatabaseError(failure)) {
        this.metrics.jobs.inc({ name, result: 'invalid' });
        const reason = failure instanceof BillingJobError ? `${failure.code}: ${failure.message}` : `database refused it: ${(failure as Error).message}`;
        refused.push(`${id}: ${reason}`);
      } else {
        this.metrics.jobs.inc({ name, result: 'error' });
        retry ??= failure;
      }
    };

    const written = facts.length > 0 ? await this.#facts.submit(facts.map((f) => f.fact)) : [];
    written.forEach((result, i) => {
      const { id, fact } = facts[i]!;
      if ('written' in result) {
        counts[result.written ? 'written' : 'unchanged'] += 1;
        this.metrics.jobs.inc({ name: fact.name, result: result.written ? 'ok' : fact.name === 'message' ? 'duplicate' : 'stale' });
      } else failed(fact.name, id, 'error' in result ? result.error : result.failure);
    });

    if (settlements.length > 0) {
      const { results, hookFailure } = await this.#settleAll(settlements.map((s) => s.job));
      results.forEach((settled, i) => {
        if ('result' in settled) {
          counts[settled.result.applied ? 'written' : 'unchanged'] += 1;
          this.metrics.jobs.inc({ name: 'settle-session', result: settled.result.applied ? 'ok' : 'duplicate' });
        } else failed('settle-session', settlements[i]!.id, settled.failure);
      });
      if (hookFailure !== undefined) retry ??= hookFailure;
    }

    if (retry !== undefined) throw retry;
    if (refused.length > 0) {
      throw unrecoverable(`${refused.length} of ${batch.facts.length} facts refused (the others are written): ${refused.join('; ')}`);
    }
    return ['ok', { facts: batch.facts.length, ...counts }];
  }
}
