/**
 * The billing worker's Prometheus metrics, registered in one registry (the process's, or a fresh one so
 * several workers — in tests — never collide on metric names).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { cachedReading } from '#shared/observability/cached-reading.ts';

/** Results a job can end with: `duplicate` and `stale` are idempotency at work, not errors. */
export type BillingJobResult = 'ok' | 'duplicate' | 'stale' | 'invalid' | 'error';

/** Queue states reported by `billing_queue_depth`. */
export const QUEUE_DEPTH_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;

export class BillingMetrics {
  readonly jobs: Counter<'name' | 'result'>;
  readonly settleLatency: Histogram;
  readonly queueDepth: Gauge<'state'>;
  readonly messageCountMismatches: Gauge;
  readonly workerRestarts: Counter;

  /**
   * `jobCounts` is asked on a scrape when its last answer is older than `countsMaxAgeMs` (METRICS_CACHE_MS; default 0,
   * every scrape); when it fails the previous values stay.
   */
  constructor(
    readonly registry: Registry,
    jobCounts: () => Promise<Record<string, number>>,
    countsMaxAgeMs = 0,
  ) {
    const counts = cachedReading(jobCounts, countsMaxAgeMs);
    this.jobs = new Counter({
      name: 'billing_jobs_total',
      help: 'Billing jobs processed, by job name and result (a fact-batch job counts as each fact it carries)',
      labelNames: ['name', 'result'] as const,
      registers: [registry],
    });
    this.settleLatency = new Histogram({
      name: 'billing_settle_latency_seconds',
      help: 'Seconds from a session end to its settlement commit',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers: [registry],
    });
    this.workerRestarts = new Counter({
      name: 'billing_partition_worker_restarts_total',
      help: 'Billing queue partition workers recreated by the watchdog (they took no job while jobs waited)',
      registers: [registry],
    });
    this.messageCountMismatches = new Gauge({
      name: 'billing_message_count_mismatches',
      help: 'Settled sessions whose message_count differs from their stored messages (lost facts), found by the reconciler in the last day',
      registers: [registry],
    });
    this.queueDepth = new Gauge({
      name: 'billing_queue_depth',
      help: 'Jobs in the billing queue, by state',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        try {
          const byState = await counts();
          for (const state of QUEUE_DEPTH_STATES) this.set({ state }, byState[state] ?? 0);
        } catch {
          // Redis unreachable: /metrics still answers; /healthz reports the outage.
        }
      },
    });
  }
}
