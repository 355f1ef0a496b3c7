/**
 * Scenario 5, fan-out across gateways: two gateway processes on one Redis; each user has a socket on both. The
 * user acts on the first (message, pause, resume in turn) and the bench times the resulting event on that socket
 * (same process) and on the other gateway's socket (crossing processes through the Socket.IO Redis Streams
 * adapter). `meter:tick` is not used: each gateway ticks its own sockets (emitLocal), so it never crosses.
 */
import { BENCH_JWT_AUDIENCE, BENCH_JWT_SECRET } from '../bench-environment.ts';
import { GatewayMetricsWindow } from '../gateway-metrics.ts';
import { rounded } from '../latency-stats.ts';
import { ProcSampler } from '../proc-stats.ts';
import { RedisCommandStats } from '../redis-command-stats.ts';
import type { TableRow } from '../report-table.ts';
import type { ScenarioContext, ScenarioResult } from '../scenario-context.ts';

export async function runGatewayFanOut(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { fanout } = ctx.options;
  const userIds = await ctx.environment.createUsers(fanout.users, '1000000.0000');
  const cloneId = await ctx.environment.createClone('0.0100');
  const set = await ctx.servers('fanout', { gateways: 2, billing: true });
  const connect = (pool: string, url: string) =>
    ctx.load.call('connect', { pool, url, userIds, secret: BENCH_JWT_SECRET, audience: BENCH_JWT_AUDIENCE, concurrency: 50, localAddresses: ['127.0.0.1'], timeoutMs: 30_000 });
  try {
    const acting = await connect('fanout-acting', set.gateways[0]!.url);
    const observer = await connect('fanout-observer', set.gateways[1]!.url);
    if (acting.failed + observer.failed > 0) throw new Error(`fan-out clients failed to connect: ${JSON.stringify({ ...acting.errors, ...observer.errors })}`);
    const started = await ctx.load.call('startSessions', { pool: 'fanout-acting', cloneId, perClient: 1, type: 'chat', concurrency: 50 });
    if (started.failed > 0) throw new Error(`fan-out sessions failed to start: ${JSON.stringify(started.errors)}`);
    // warm-up (not measured): the first reply builds the gateway's tokenizer, a half-second stall
    await ctx.load.call('fanoutRun', { acting: 'fanout-acting', observer: 'fanout-observer', rate: Math.min(fanout.rate, 20), durationMs: ctx.options.quick ? 500 : 2000, timeoutMs: 10_000 });
    ctx.progress.note(`  ${fanout.users} users on both gateways, ${fanout.rate} actions/s for ${fanout.durationMs / 1000} s`);
    const sampler = new ProcSampler({ 'gateway-1': set.gateways[0]!.pid, 'gateway-2': set.gateways[1]!.pid, billing: set.billing!.pid, load: ctx.load.pid, bench: process.pid });
    const redisStats = new RedisCommandStats(ctx.environment.redis);
    await redisStats.start();
    const metrics = set.gateways.map((g) => new GatewayMetricsWindow(g.url));
    await Promise.all(metrics.map((m) => m.start()));
    sampler.start();
    const run = await ctx.load.call('fanoutRun', { acting: 'fanout-acting', observer: 'fanout-observer', rate: fanout.rate, durationMs: fanout.durationMs, timeoutMs: 10_000 });
    const cpu = sampler.stop();
    const redis = await redisStats.stop();
    const gatewaysSelf = await Promise.all(metrics.map((m) => m.stop().catch(() => undefined)));
    const figures = {
      cpu,
      redis,
      gatewaysSelf,
      users: fanout.users,
      rate: fanout.rate,
      durationSeconds: fanout.durationMs / 1000,
      actions: run.actions,
      lost: run.lost,
      skipped: run.skipped,
      errors: run.errors,
      sessionUpdated: { sameProcessMs: rounded(run.updatedSame), crossProcessMs: rounded(run.updatedCross) },
      messageCompleted: { sameProcessMs: rounded(run.completedSame), crossProcessMs: rounded(run.completedCross) },
      crossMinusSameMs: rounded(run.crossMinusSame),
    };
    const rows: TableRow[] = [
      { scenario: 'fanout', metric: 'session:updated p50, other gateway (vs same)', unit: 'ms', value: run.updatedCross.p50, baseline: run.updatedSame.p50, ratio: run.updatedCross.p50 / run.updatedSame.p50 },
      { scenario: 'fanout', metric: 'session:updated p99, other gateway (vs same)', unit: 'ms', value: run.updatedCross.p99, baseline: run.updatedSame.p99, ratio: run.updatedCross.p99 / run.updatedSame.p99 },
      { scenario: 'fanout', metric: 'reply completed p99, other gateway (vs same)', unit: 'ms', value: run.completedCross.p99, baseline: run.completedSame.p99, ratio: run.completedCross.p99 / run.completedSame.p99 },
      { scenario: 'fanout', metric: 'other − same gateway arrival p99', unit: 'ms', value: run.crossMinusSame.p99 },
      { scenario: 'fanout', metric: 'events lost (no arrival in 10 s)', unit: 'actions', value: run.lost },
    ];
    return { figures, rows, cpu: [{ window: 'fanout: run', breakdown: cpu, redis }] };
  } finally {
    await ctx.load.call('disconnect', { pool: 'fanout-acting' });
    await ctx.load.call('disconnect', { pool: 'fanout-observer' });
    await ctx.release(set);
  }
}
