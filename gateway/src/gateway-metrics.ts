/**
 * The gateway's Prometheus metrics, in its registry: the process's defaults, open connections, client events handled
 * by result, clone replies generating and waiting, and — read at most once per METRICS_CACHE_MS however often
 * `/metrics` is scraped — sessions not yet ended (Postgres) and the billing queue's depth.
 */
import type { BillingQueues } from '#shared/contract/billing-queue.ts';
import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, type Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '#shared/db/schema.ts';
import { cachedReading } from '#shared/observability/cached-reading.ts';

export interface GatewayMetricsOptions {
  registry: Registry;
  db: Kysely<Database>;
  queue: BillingQueues;
  /** METRICS_CACHE_MS: how long the Postgres and queue counts are reused. */
  cacheMs: number;
  /** Replies generating now and waiting for a slot (SessionService.replyLoad). */
  replyLoad: () => { active: number; queued: number };
}

export interface GatewayMetrics {
  connections: Gauge;
  eventsHandled: Counter<'event' | 'result'>;
  /** `internal` answers by event and cause (the error's class and code): each is a bug to find. */
  internalAnswers: Counter<'event' | 'cause'>;
}

export function createGatewayMetrics(options: GatewayMetricsOptions): GatewayMetrics {
  const { registry, db, queue, cacheMs, replyLoad } = options;
  collectDefaultMetrics({ register: registry });
  const openSessions = cachedReading(
    () =>
      db
        .selectFrom('sessions')
        .select(['status', (eb) => eb.fn.countAll<string>().as('count')])
        .where('status', '!=', 'ended')
        .groupBy('status')
        .execute(),
    cacheMs,
  );
  const jobCounts = cachedReading(() => queue.getJobCounts('waiting', 'active', 'delayed', 'failed'), cacheMs);
  const connections = new Gauge({ name: 'gateway_connections', help: 'Open Socket.IO connections on this process', registers: [registry] });
  new Gauge({
    name: 'gateway_replies',
    help: 'Clone replies on this process: generating, and waiting for a slot (the bound of replies in flight)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const { active, queued } = replyLoad();
      this.set({ state: 'active' }, active);
      this.set({ state: 'queued' }, queued);
    },
  });
  const eventsHandled = new Counter({
    name: 'gateway_events_total',
    help: 'Client events handled, by event and result code',
    labelNames: ['event', 'result'] as const,
    registers: [registry],
  });
  const internalAnswers = new Counter({
    name: 'gateway_internal_answers_total',
    help: 'Answers `internal` (an error nobody named), by event and cause: the error\'s class and code',
    labelNames: ['event', 'cause'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'gateway_open_sessions',
    help: 'Sessions not yet ended, by status (from Postgres)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await openSessions();
      this.reset();
      for (const status of ['active', 'paused']) {
        this.set({ status }, Number(rows.find((r) => r.status === status)?.count ?? 0));
      }
    },
  });
  new Gauge({
    name: 'gateway_billing_queue_depth',
    help: 'Billing jobs by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = await jobCounts();
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  return { connections, eventsHandled, internalAnswers };
}

/**
 * Every LiveKit webhook's skew — Redis time at its receipt minus the instant LiveKit stamped on it (positive: the
 * event is older than its receipt) — and the webhooks applied at receipt instead because the skew passed
 * WEBHOOK_SKEW_MS. A LiveKit clock running ahead or behind shows as the whole histogram shifting.
 */
export function createWebhookSkewMetric(registry: Registry): (skewMs: number, appliedAtReceipt: boolean) => void {
  const skew = new Histogram({
    name: 'gateway_livekit_webhook_skew_seconds',
    help: 'Redis time at a LiveKit webhook\'s receipt minus the event\'s own instant',
    buckets: [-60, -10, -5, -2, -1, -0.25, 0, 0.25, 1, 2, 5, 10, 60],
    registers: [registry],
  });
  const atReceipt = new Counter({
    name: 'gateway_livekit_webhooks_at_receipt_total',
    help: 'LiveKit webhooks whose skew passed WEBHOOK_SKEW_MS: applied at their receipt, not at their own instant',
    registers: [registry],
  });
  return (skewMs, appliedAtReceipt) => {
    skew.observe(skewMs / 1000);
    if (appliedAtReceipt) atReceipt.inc();
  };
}
