/**
 * `/metrics` on both processes: with METRICS_TOKEN set it answers only `Authorization: Bearer <METRICS_TOKEN>` (401 in
 * the error shape otherwise), and its expensive counts — Postgres and the billing queue — are read at most once per
 * METRICS_CACHE_MS however often it is scraped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { BillingMetrics } from '#billing/billing-metrics.ts';
import { billingAppOf, createClone, createUser, startSystem, type TestSystem } from '../support/system.ts';

const METRICS_TOKEN = 'metrics-token-0123456789-abcdef';
/** Long enough that two scrapes in a row always fall within it. */
const CACHE_MS = 60_000;

let system: TestSystem;
let billing: FastifyInstance;
let urls: Record<'gateway' | 'billing', string>;
test.before(async () => {
  system = await startSystem({ env: { METRICS_TOKEN, METRICS_CACHE_MS: String(CACHE_MS) } });
  billing = billingAppOf(system);
  await billing.listen({ port: 0, host: '127.0.0.1' });
  urls = { gateway: system.url, billing: `http://127.0.0.1:${(billing.server.address() as AddressInfo).port}` };
});
test.after(async () => {
  await billing?.close();
  await system?.close();
});

const scrape = async (url: string, authorization?: string) => {
  const response = await fetch(`${url}/metrics`, { headers: authorization ? { authorization } : {} });
  return { status: response.status, text: await response.text(), authenticate: response.headers.get('www-authenticate') };
};

for (const side of ['gateway', 'billing'] as const) {
  test(`${side}: /metrics needs the METRICS_TOKEN bearer token; /healthz does not`, async () => {
    for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${METRICS_TOKEN}`, `Bearer ${METRICS_TOKEN}x`, 'Bearer ']) {
      const refused = await scrape(urls[side], authorization);
      assert.is(refused.status, 401, `${String(authorization)}: ${refused.text}`);
      assert.equal(JSON.parse(refused.text), { error: { code: 'unauthorized', message: JSON.parse(refused.text).error.message } });
      assert.is(refused.authenticate, 'Bearer');
      assert.not.match(refused.text, /process_cpu|_total/);
    }
    const allowed = await scrape(urls[side], `Bearer ${METRICS_TOKEN}`);
    assert.is(allowed.status, 200, allowed.text);
    if (side === 'gateway') assert.match(allowed.text, /process_cpu_user_seconds_total/);
    assert.is((await fetch(`${urls[side]}/healthz`)).status, 200);
  });
}

/** The value of an unlabelled-or-labelled sample line in Prometheus text. */
function sample(text: string, line: string): number {
  const match = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  assert.ok(match, `no ${line} in the metrics`);
  return Number(match[1]);
}

test('gateway: two quick scrapes ask the queue once and Postgres once (the second sees the first one\'s counts)', async () => {
  let queueReads = 0;
  const getJobCounts = system.queue.getJobCounts.bind(system.queue);
  system.queue.getJobCounts = ((...states: Parameters<typeof getJobCounts>) => {
    queueReads += 1;
    return getJobCounts(...states);
  }) as typeof system.queue.getJobCounts;
  // a gateway no one has scraped yet
  const gateway = await system.addGateway();
  try {
    const first = await scrape(gateway.url, `Bearer ${METRICS_TOKEN}`);
    const active = sample(first.text, 'gateway_open_sessions{status="active"}');
    // a session Postgres would now count, unseen by a scrape within METRICS_CACHE_MS
    const userId = await createUser(system);
    const { cloneId } = await createClone(system);
    await system.database.db
      .insertInto('sessions')
      .values({ id: randomUUID(), user_id: userId, clone_id: cloneId, session_type: 'chat', status: 'active', rate_per_minute: '1.0000', total_cost: '0.0000' })
      .execute();
    const second = await scrape(gateway.url, `Bearer ${METRICS_TOKEN}`);
    assert.is(queueReads, 1, 'the queue was asked once for two scrapes');
    assert.is(sample(second.text, 'gateway_open_sessions{status="active"}'), active, 'the second scrape reused the count');
    // a gateway that has not read it yet sees the new session: the count was cached, not broken
    const other = await system.addGateway();
    const fresh = await scrape(other.url, `Bearer ${METRICS_TOKEN}`);
    assert.is(sample(fresh.text, 'gateway_open_sessions{status="active"}'), active + 1);
    await other.close();
  } finally {
    system.queue.getJobCounts = getJobCounts;
    await gateway.close();
  }
});

test('billing: billing_queue_depth asks the queue once per METRICS_CACHE_MS, however many scrapes', async () => {
  let reads = 0;
  const counts = async () => {
    reads += 1;
    return { waiting: reads, active: 0 };
  };
  const cached = new BillingMetrics(new Registry(), counts, CACHE_MS);
  const first = await cached.registry.metrics();
  const second = await cached.registry.metrics();
  assert.is(reads, 1);
  assert.is(sample(first, 'billing_queue_depth{state="waiting"}'), 1);
  assert.is(sample(second, 'billing_queue_depth{state="waiting"}'), 1);
});

test.run();
