/**
 * Scenario 2, chat round trip: K active chat sessions (one user and socket each) send `message:send` at a fixed
 * total rate (open loop); figures are the ack latency, the latency of the clone's streamed reply
 * (`message:completed`, offline responder) and the rate achieved, with gateway, billing and Redis CPU. The baseline
 * is the bare Socket.IO server acking the same sends from the same client at the same rate.
 *
 * Ratio: each server's capacity is found by a sweep of rising rates (each held `stepMs`); a step passes when ack
 * p99 ≤ p99LimitMs (50 ms), the achieved rate is ≥ 95 % of the offered one and nothing failed, timed out or was
 * shed. Capacity = the highest passing rate before the first miss (when the first step misses, the rate is halved
 * until one passes; 0 below 5/s); ratio = gateway capacity ÷ baseline capacity. The gateway's sweep runs on fresh
 * processes, before the fixed-rate run, so the backlog an overloaded fixed run leaves does not weigh on it.
 */
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { duplicateRedis } from '#shared/live-state/redis-client.ts';
import { BENCH_JWT_AUDIENCE, BENCH_JWT_SECRET } from '../bench-environment.ts';
import type { BenchProcess } from '../bench-process.ts';
import { GatewayMetricsWindow, type GatewayWindow } from '../gateway-metrics.ts';
import { rounded } from '../latency-stats.ts';
import type { ChatRunResult } from '../load-protocol.ts';
import { ProcSampler } from '../proc-stats.ts';
import { RedisCommandStats } from '../redis-command-stats.ts';
import type { TableRow } from '../report-table.ts';
import { sleep, type ScenarioContext, type ScenarioResult, type ServerSet } from '../scenario-context.ts';

interface SweepStep {
  rate: number;
  /** The gateway's own event-loop delay and GC over the step (gateway steps only). */
  gateway?: GatewayWindow;
  pass: boolean;
  achievedRate: number;
  ackP50: number;
  ackP99: number;
  failed: number;
  timedOut: number;
  shed: number;
}

const ACK_TIMEOUT_MS = 10_000;
/** The sweep does not go below this rate (messages/s). */
const MIN_SWEEP_RATE = 5;

/** A figure for the progress line; a missing one (no samples) as 'n/a'. */
const fixed = (value: number | null | undefined, digits: number) =>
  value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);

function summarizeRun(run: ChatRunResult) {
  return { ...run, ack: rounded(run.ack), reply: rounded(run.reply) };
}

export async function runChatRoundTrip(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { chat } = ctx.options;
  const userIds = await ctx.environment.createUsers(chat.sessions, '1000000.0000');
  const cloneId = await ctx.environment.createClone('0.0100');
  const connectParams = (url: string) => ({
    url,
    userIds,
    secret: BENCH_JWT_SECRET,
    audience: BENCH_JWT_AUDIENCE,
    concurrency: 50,
    localAddresses: ['127.0.0.1'],
    timeoutMs: 30_000,
  });

  const sweep = async (pool: string, label: string, metricsUrl?: string): Promise<{ steps: SweepStep[]; capacity: number }> => {
    const steps: SweepStep[] = [];
    const tryRate = async (rate: number) => {
      const metrics = metricsUrl ? new GatewayMetricsWindow(metricsUrl) : undefined;
      await metrics?.start();
      const run = await ctx.load.call('chatRun', {
        pool,
        rate,
        durationMs: chat.stepMs,
        maxOutstanding: Math.max(100, Math.ceil(rate * (chat.p99LimitMs / 1000) * 4)),
        ackTimeoutMs: ACK_TIMEOUT_MS,
        replyWaitMs: 0,
        expectReplies: false,
        label: `${label}@${rate}`,
      });
      const gateway = await metrics?.stop();
      // no ack at all gives no percentile (NaN, null once it crossed the process boundary): a miss, not a pass
      const pass =
        Number.isFinite(run.ack.p99 ?? Number.NaN) && run.ack.p99 <= chat.p99LimitMs && run.achievedRate >= 0.95 * rate && run.failed === 0 && run.timedOut === 0 && run.shed === 0;
      steps.push({ rate, pass, ...(gateway ? { gateway } : {}), achievedRate: run.achievedRate, ackP50: run.ack.p50, ackP99: run.ack.p99, failed: run.failed, timedOut: run.timedOut, shed: run.shed });
      const loop = gateway ? `, gateway event-loop delay p99 ${fixed(gateway.eventLoopDelayMs.p99, 0)} ms max ${fixed(gateway.eventLoopDelayMs.max, 0)} ms` : '';
      ctx.progress.note(`  ${label} sweep ${rate}/s: ack p50 ${fixed(run.ack.p50, 1)} p99 ${fixed(run.ack.p99, 1)} ms, achieved ${fixed(run.achievedRate, 0)}/s${loop} ${pass ? '✓' : '✗'}`);
      await sleep(500);
      return pass;
    };
    const [first, ...higher] = chat.sweepRates;
    if (!(await tryRate(first!))) {
      // below the first step: halve until one passes, so a slow server still gets a capacity (0 only below MIN_SWEEP_RATE)
      for (let rate = Math.floor(first! / 2); rate >= MIN_SWEEP_RATE; rate = Math.floor(rate / 2)) {
        if (await tryRate(rate)) return { steps, capacity: rate };
      }
      return { steps, capacity: 0 };
    }
    let capacity = first!;
    for (const rate of higher) {
      if (!(await tryRate(rate))) break;
      capacity = rate;
    }
    return { steps, capacity };
  };

  const fixedRun = async (pool: string, label: string, expectReplies: boolean) =>
    ctx.load.call('chatRun', {
      pool,
      rate: chat.rate,
      durationMs: chat.durationMs,
      maxOutstanding: Math.max(200, Math.ceil(chat.rate * 5)),
      ackTimeoutMs: ACK_TIMEOUT_MS,
      replyWaitMs: ctx.options.quick ? 5000 : 20_000,
      expectReplies,
      label,
    });

  // a few messages per session first: the gateway builds its tokenizer (about half a second) on the first reply
  const warmUp = (pool: string) =>
    ctx.load.call('chatRun', {
      pool,
      rate: Math.min(50, chat.rate),
      durationMs: ctx.options.quick ? 500 : 3000,
      maxOutstanding: 1000,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      replyWaitMs: ctx.options.quick ? 2000 : 10_000,
      expectReplies: true,
      label: `warm-up-${pool}`,
    });

  const withGateway = async <T>(label: string, run: (set: ServerSet, pool: string) => Promise<T>): Promise<T> => {
    const set = await ctx.servers(label, { gateways: 1, billing: true });
    const pool = `${label}-pool`;
    try {
      const connected = await ctx.load.call('connect', { ...connectParams(set.gateways[0]!.url), pool });
      if (connected.failed > 0) throw new Error(`${connected.failed} chat clients failed to connect: ${JSON.stringify(connected.errors)}`);
      const started = await ctx.load.call('startSessions', { pool, cloneId, perClient: 1, type: 'chat', concurrency: 50 });
      if (started.failed > 0) throw new Error(`${started.failed} chat sessions failed to start: ${JSON.stringify(started.errors)}`);
      await warmUp(pool);
      return await run(set, pool);
    } finally {
      await ctx.load.call('disconnect', { pool });
      await ctx.release(set);
    }
  };

  // the baseline: bare server, same client, same rate; then its capacity
  const bareServer: BenchProcess = await ctx.bare('chat');
  let bareFixed: ChatRunResult;
  let bareSweep: { steps: SweepStep[]; capacity: number };
  try {
    await ctx.load.call('connect', { ...connectParams(bareServer.url), pool: 'chat-bare' });
    await ctx.load.call('fakeSessions', { pool: 'chat-bare', perClient: 1 });
    await warmUp('chat-bare');
    ctx.progress.note(`  baseline: ${chat.rate}/s for ${chat.durationMs / 1000} s`);
    bareFixed = await fixedRun('chat-bare', 'bare', false);
    bareSweep = await sweep('chat-bare', 'bare');
  } finally {
    await ctx.load.call('disconnect', { pool: 'chat-bare' });
    await ctx.releaseBare(bareServer);
  }

  const gatewaySweep = await withGateway('chat-sweep', (set, pool) => sweep(pool, 'gateway', set.gateways[0]!.url));

  const gateway = await withGateway('chat', async (set, pool) => {
    const gatewayProcess = set.gateways[0]!;
    const sampler = new ProcSampler({ gateway: gatewayProcess.pid, billing: set.billing!.pid, load: ctx.load.pid, bench: process.pid });
    const metrics = new GatewayMetricsWindow(gatewayProcess.url);
    await metrics.start();
    const redisStats = new RedisCommandStats(ctx.environment.redis);
    await redisStats.start();
    sampler.start();
    ctx.progress.note(`  gateway: ${chat.rate}/s for ${chat.durationMs / 1000} s over ${chat.sessions} sessions`);
    const run = await fixedRun(pool, 'gateway', true);
    const cpu = sampler.stop();
    const redis = await redisStats.stop();
    const gatewaySelf = await metrics.stop().catch(() => undefined);
    const queue = new BillingQueues(duplicateRedis(ctx.environment.redis), set.prefix);
    const backlog = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
    await queue.close();
    return {
      run,
      cpu,
      redis,
      gatewaySelf,
      billingBacklogAfter: backlog,
    };
  });

  const ratio = bareSweep.capacity > 0 ? gatewaySweep.capacity / bareSweep.capacity : Number.NaN;
  const rows: TableRow[] = [
    { scenario: 'chat', metric: `achieved rate (offered ${chat.rate}/s)`, unit: 'msg/s', value: gateway.run.achievedRate, baseline: bareFixed.achievedRate, target: { op: '>=', value: 2000 } },
    { scenario: 'chat', metric: 'message:send ack p50', unit: 'ms', value: gateway.run.ack.p50, baseline: bareFixed.ack.p50 },
    { scenario: 'chat', metric: 'message:send ack p99', unit: 'ms', value: gateway.run.ack.p99, baseline: bareFixed.ack.p99, target: { op: '<=', value: 20 } },
    { scenario: 'chat', metric: 'message:send ack max', unit: 'ms', value: gateway.run.ack.max, baseline: bareFixed.ack.max },
    { scenario: 'chat', metric: 'reply completed p50', unit: 'ms', value: gateway.run.reply.p50 },
    { scenario: 'chat', metric: 'reply completed p99', unit: 'ms', value: gateway.run.reply.p99 },
    { scenario: 'chat', metric: 'replies not completed in time', unit: 'msgs', value: gateway.run.repliesMissing },
    { scenario: 'chat', metric: 'sends shed / failed / timed out', unit: 'msgs', value: gateway.run.shed + gateway.run.failed + gateway.run.timedOut, baseline: bareFixed.shed + bareFixed.failed + bareFixed.timedOut },
    { scenario: 'chat', metric: 'gateway CPU during run', unit: 'cores', value: gateway.cpu.cores['gateway'] ?? Number.NaN },
    { scenario: 'chat', metric: `capacity at ack p99 ≤ ${chat.p99LimitMs} ms`, unit: 'msg/s', value: gatewaySweep.capacity, baseline: bareSweep.capacity, ratio, target: { op: '>=', value: 0.5, on: 'ratio' } },
  ];
  return {
    figures: {
      sessions: chat.sessions,
      offeredRate: chat.rate,
      durationSeconds: chat.durationMs / 1000,
      gateway: { ...gateway, run: summarizeRun(gateway.run) },
      baseline: summarizeRun(bareFixed),
      sweep: { p99LimitMs: chat.p99LimitMs, stepSeconds: chat.stepMs / 1000, gateway: gatewaySweep, baseline: bareSweep, ratio },
    },
    rows,
    cpu: [{ window: `chat: gateway at ${chat.rate}/s`, breakdown: gateway.cpu, redis: gateway.redis }],
  };
}
