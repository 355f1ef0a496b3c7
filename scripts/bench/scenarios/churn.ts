/**
 * Scenario churn: users coming and going, as a marketplace sees them — open-loop arrivals at a fixed rate, each user
 * connecting with its own token, starting a chat, sending `messagesPerUser` messages `thinkMs` apart (each answered
 * by the clone), ending and leaving. A sweep of rising arrival rates finds the capacity: the highest rate where
 * message ack p99 ≤ p99LimitMs (50 ms), session:start p99 ≤ startP99LimitMs (100 ms), every arrival's every message
 * acknowledged and nothing failed or was shed (the offered message rate is arrivals/s × messagesPerUser). The same sweep, same client, against the bare server
 * (start, send and end answered in memory) gives the ratio in the same run.
 *
 * Each gateway step also reports what a message costs: Redis time (INFO commandstats deltas, every command; a pass
 * of its own after the sweep splits EVALSHA by script from Redis's SLOWLOG) and
 * gateway and billing CPU per acknowledged message, with its share of the starts, ends, ticks and settlements of
 * the step; end → settled from Postgres; and the gateway's used heap after the sweep, as found and after a full GC.
 */
import { BENCH_JWT_AUDIENCE, BENCH_JWT_SECRET } from '../bench-environment.ts';
import type { BenchProcess } from '../bench-process.ts';
import { rounded, summarize } from '../latency-stats.ts';
import type { ChurnRunResult } from '../load-protocol.ts';
import { ProcSampler, type CpuBreakdown } from '../proc-stats.ts';
import { RedisCommandStats, type RedisWindow } from '../redis-command-stats.ts';
import { RedisScriptStats } from '../redis-script-stats.ts';
import type { TableRow } from '../report-table.ts';
import { sleep, type ScenarioContext, type ScenarioResult } from '../scenario-context.ts';

const ACK_TIMEOUT_MS = 10_000;

interface ChurnStep {
  arrivalRate: number;
  pass: boolean;
  run: ChurnRunResult;
  /** Gateway steps only. */
  cost?: { redisUsecPerMessage: number; gatewayCpuUsecPerMessage: number; billingCpuUsecPerMessage: number; redis: RedisWindow; cpu: CpuBreakdown };
  /** session:end acknowledged → settled_at in Postgres (ms), gateway steps only. */
  endToSettled?: ReturnType<typeof rounded>;
}

const fixed = (value: number | null | undefined, digits: number) =>
  value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);

export async function runChurn(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { churn } = ctx.options;
  const userIds = await ctx.environment.createUsers(churn.users, '1000000.0000');
  const cloneId = await ctx.environment.createClone('0.0100');

  const passes = (run: ChurnRunResult) =>
    Number.isFinite(run.ack.p99 ?? Number.NaN) &&
    run.ack.p99 <= churn.p99LimitMs &&
    Number.isFinite(run.start.p99 ?? Number.NaN) &&
    run.start.p99 <= churn.startP99LimitMs &&
    // open loop: the server kept up when every arrival's every message was acknowledged (none shed or failed)
    run.acked >= 0.95 * run.arrivals * churn.messagesPerUser &&
    run.failedVisits === 0 &&
    run.shed === 0;

  const churnRun = (url: string, arrivalRate: number, label: string, expectReplies: boolean) =>
    ctx.load.call('churnRun', {
      url,
      userIds,
      secret: BENCH_JWT_SECRET,
      audience: BENCH_JWT_AUDIENCE,
      cloneId,
      arrivalRate,
      durationMs: churn.stepMs,
      messagesPerUser: churn.messagesPerUser,
      thinkMs: churn.thinkMs,
      maxActiveUsers: Math.max(50, Math.ceil(arrivalRate * ((churn.messagesPerUser * churn.thinkMs) / 1000 + 5) * 2)),
      ackTimeoutMs: ACK_TIMEOUT_MS,
      replyWaitMs: expectReplies ? 5000 : 0,
      expectReplies,
      label,
    });

  /** Every rate of the sweep, in order, until the first that misses. */
  const sweep = async (label: string, step: (rate: number) => Promise<ChurnStep>): Promise<{ steps: ChurnStep[]; capacity: number }> => {
    const steps: ChurnStep[] = [];
    let capacity = 0;
    for (const rate of churn.arrivalRates) {
      const result = await step(rate);
      steps.push(result);
      const { run } = result;
      ctx.progress.note(
        `  ${label} ${rate} users/s (${rate * churn.messagesPerUser} msg/s): ack p99 ${fixed(run.ack.p99, 1)} ms, start p99 ${fixed(run.start.p99, 1)} ms, ` +
          `achieved ${fixed(run.achievedMessageRate, 0)} msg/s, failed ${run.failedVisits}, shed ${run.shed}` +
          (result.cost ? `, Redis ${fixed(result.cost.redisUsecPerMessage, 0)} µs/msg` : '') +
          ` ${result.pass ? '✓' : '✗'}`,
      );
      if (!result.pass) break;
      capacity = rate;
      await sleep(500);
    }
    return { steps, capacity };
  };

  // the baseline: the bare server, same client, same arrivals (once per bench run: it does not use Redis)
  const bare = await ctx.once('churn-bare', async () => {
    const bareServer: BenchProcess = await ctx.bare('churn');
    try {
      return await sweep('bare', async (rate) => {
        const run = await churnRun(bareServer.url, rate, `bare@${rate}`, false);
        return { arrivalRate: rate, pass: passes(run), run };
      });
    } finally {
      await ctx.releaseBare(bareServer);
    }
  });

  const set = await ctx.servers('churn', { gateways: 1, billing: true });
  let gateway: { steps: ChurnStep[]; capacity: number };
  let heapUsedMb = Number.NaN;
  let heapRetainedMb = Number.NaN;
  try {
    const gatewayProcess = set.gateways[0]!;
    gateway = await sweep('gateway', async (rate) => {
      const sampler = new ProcSampler({ gateway: gatewayProcess.pid, billing: set.billing!.pid, load: ctx.load.pid, bench: process.pid });
      const redisStats = new RedisCommandStats(ctx.environment.redis);
      await redisStats.start();
      sampler.start();
      const run = await churnRun(gatewayProcess.url, rate, `gateway@${rate}`, true);
      const endToSettled = await settledAfter(ctx, run.ended);
      const cpu = sampler.stop();
      const redis = await redisStats.stop();
      const redisUsec = redis.totalUsec;
      const perMessage = (cores: number | undefined) => ((cores ?? Number.NaN) * cpu.seconds * 1e6) / Math.max(1, run.acked);
      return {
        arrivalRate: rate,
        pass: passes(run),
        run,
        cost: {
          redisUsecPerMessage: redisUsec / Math.max(1, run.acked),
          gatewayCpuUsecPerMessage: perMessage(cpu.cores['gateway']),
          billingCpuUsecPerMessage: perMessage(cpu.cores['billing']),
          redis,
          cpu,
        },
        endToSettled,
      };
    });
    heapUsedMb = await heapUsed(gatewayProcess.url);
    // what the gateway keeps at rest, apart from garbage not yet collected
    await gatewayProcess.collectGarbage();
    heapRetainedMb = await heapUsed(gatewayProcess.url);
    if (!ctx.options.quick) {
      // EVALSHA by script, from Redis's SLOWLOG: a pass of its own (logging every command would perturb the measured
      // steps), at the rate of the reported step, reported beside it
      const reported = gateway.steps.filter((s) => s.pass).at(-1) ?? gateway.steps[0]!;
      const scriptStats = new RedisScriptStats(ctx.environment.redis);
      await scriptStats.start();
      await churnRun(gatewayProcess.url, reported.arrivalRate, `scripts@${reported.arrivalRate}`, true);
      const scripts = await scriptStats.stop(20);
      if (reported.cost) reported.cost.redis.scripts = scripts;
      ctx.progress.note(`  Redis by script at ${reported.arrivalRate} users/s: ${scripts.scripts.slice(0, 6).map((c) => `${c.script} ${c.usecPerCall} µs × ${c.calls}`).join(', ')}`);
    }
  } finally {
    await ctx.release(set);
  }

  const best = gateway.steps.filter((s) => s.pass).at(-1) ?? gateway.steps[0]!;
  const bareBest = bare.steps.find((s) => s.arrivalRate === best.arrivalRate);
  const ratio = bare.capacity > 0 ? gateway.capacity / bare.capacity : Number.NaN;
  const perUser = churn.messagesPerUser;
  const rows: TableRow[] = [
    { scenario: 'churn', metric: `capacity (ack p99 ≤ ${churn.p99LimitMs}, start p99 ≤ ${churn.startP99LimitMs} ms)`, unit: 'msg/s', value: gateway.capacity * perUser, baseline: bare.capacity * perUser, ratio, target: { op: '>=', value: 1500 } },
    { scenario: 'churn', metric: `message:send ack p50 at ${best.arrivalRate} users/s`, unit: 'ms', value: best.run.ack.p50, baseline: bareBest?.run.ack.p50 },
    { scenario: 'churn', metric: `message:send ack p99 at ${best.arrivalRate} users/s`, unit: 'ms', value: best.run.ack.p99, baseline: bareBest?.run.ack.p99, target: { op: '<=', value: churn.p99LimitMs } },
    { scenario: 'churn', metric: 'session:start ack p99', unit: 'ms', value: best.run.start.p99, baseline: bareBest?.run.start.p99, target: { op: '<=', value: churn.startP99LimitMs } },
    { scenario: 'churn', metric: 'session:end ack p99', unit: 'ms', value: best.run.end.p99, baseline: bareBest?.run.end.p99 },
    { scenario: 'churn', metric: 'connect (handshake) p99', unit: 'ms', value: best.run.connect.p99, baseline: bareBest?.run.connect.p99 },
    { scenario: 'churn', metric: 'reply completed p99', unit: 'ms', value: best.run.reply.p99 },
    { scenario: 'churn', metric: 'session:end → settled p99', unit: 'ms', value: best.endToSettled?.p99 ?? Number.NaN },
    { scenario: 'churn', metric: 'Redis time per message', unit: 'µs', value: best.cost?.redisUsecPerMessage ?? Number.NaN, target: { op: '<=', value: 250 } },
    { scenario: 'churn', metric: 'gateway CPU per message', unit: 'µs', value: best.cost?.gatewayCpuUsecPerMessage ?? Number.NaN },
    { scenario: 'churn', metric: 'billing CPU per message', unit: 'µs', value: best.cost?.billingCpuUsecPerMessage ?? Number.NaN },
    { scenario: 'churn', metric: 'gateway heap used after the sweep', unit: 'MB', value: heapUsedMb, target: { op: '<=', value: 120 } },
    { scenario: 'churn', metric: 'gateway heap after a full GC', unit: 'MB', value: heapRetainedMb },
  ];
  const summarized = (steps: ChurnStep[]) =>
    steps.map((s) => ({
      ...s,
      run: { ...s.run, ended: s.run.ended.length, connect: rounded(s.run.connect), start: rounded(s.run.start), ack: rounded(s.run.ack), end: rounded(s.run.end), reply: rounded(s.run.reply) },
    }));
  return {
    figures: {
      messagesPerUser: perUser,
      thinkMs: churn.thinkMs,
      stepSeconds: churn.stepMs / 1000,
      gateway: { capacityUsersPerSecond: gateway.capacity, steps: summarized(gateway.steps), heapUsedMb, heapRetainedMb },
      baseline: { capacityUsersPerSecond: bare.capacity, steps: summarized(bare.steps) },
      ratio,
    },
    rows,
    cpu: best.cost ? [{ window: `churn: gateway at ${best.arrivalRate} users/s`, breakdown: best.cost.cpu, redis: best.cost.redis }] : [],
  };
}

/** session:end acknowledged → settled_at (Postgres's clock, the same machine), waiting up to 10 s for the last. */
async function settledAfter(ctx: ScenarioContext, ended: ChurnRunResult['ended']): Promise<ReturnType<typeof rounded> | undefined> {
  if (ended.length === 0) return undefined;
  const ids = ended.map((e) => e.sessionId);
  const deadline = Date.now() + 10_000;
  let rows: Array<{ id: string; settled_at: Date | null }> = [];
  do {
    rows = await ctx.environment.db.selectFrom('sessions').select(['id', 'settled_at']).where('id', 'in', ids).execute();
    if (rows.length === ids.length && rows.every((r) => r.settled_at !== null)) break;
    await sleep(100);
  } while (Date.now() < deadline);
  const settledAt = new Map(rows.map((r) => [r.id, r.settled_at]));
  const latencies = ended.flatMap((e) => {
    const at = settledAt.get(e.sessionId);
    return at ? [new Date(at).getTime() - e.endedAt] : [];
  });
  return rounded(summarize(latencies));
}

/** The gateway's used V8 heap (MB) from its /metrics, garbage included. */
async function heapUsed(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  return match ? Number(match[1]) / 1024 / 1024 : Number.NaN;
}
