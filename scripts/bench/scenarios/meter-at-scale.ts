/**
 * Scenario 3, meter at scale: M active chat sessions, `perUser` per user (one socket each), METER_TICK_MS ticks.
 * Some users get just enough credits to run out during the measured window (their sessions start last).
 * Figures: gateway CPU (from /proc/<pid>/stat) over the window, tick lateness (see load/meter-window.ts), and for
 * every session ended by exhaustion |endTime − exact instant|: the exact instant is the first millisecond t at
 * which Σ timeCost(rate, t − startTime_i) over the user's sessions reaches the user's credits (the pricing rule of
 * shared/src/money/pricing.ts, start times from the session:start answers). Also how long after that instant the
 * client got `session:ended`.
 */
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { duplicateRedis } from '#shared/live-state/redis-client.ts';
import { BENCH_JWT_AUDIENCE, BENCH_JWT_SECRET } from '../bench-environment.ts';
import { GatewayMetricsWindow } from '../gateway-metrics.ts';
import { rounded, summarize } from '../latency-stats.ts';
import type { StartedSession } from '../load-protocol.ts';
import { ProcSampler } from '../proc-stats.ts';
import { RedisCommandStats } from '../redis-command-stats.ts';
import type { TableRow } from '../report-table.ts';
import { sleep, waitUntil, type ScenarioContext, type ScenarioResult } from '../scenario-context.ts';

/** Per-minute rate of the clone: 60 credits/min = 10 units per ms, so the exhaustion instant resolves to the ms. */
const RATE = '60.0000';
/** Credits of users that are not meant to run out. */
const PLENTY = '1000000.0000';
/** Time between the last session start and the window, so the start burst is not measured. */
const SETTLE_MS = 2000;
/** Assumed session starts per second when planning when exhausting users run out (only aims them into the window). */
const ASSUMED_START_RATE = 300;

/** The first integer ms at which the sessions' summed time cost reaches `credits` (units). */
export function exactExhaustion(startTimes: readonly number[], rate: bigint, credits: bigint): number {
  const cost = (t: number) => startTimes.reduce((sum, s) => sum + timeCost(rate, Math.max(0, t - s)), 0n);
  let lo = Math.min(...startTimes);
  let hi = lo + 1;
  while (cost(hi) < credits) hi = lo + (hi - lo) * 2;
  if (cost(lo) >= credits) return lo;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (cost(mid) >= credits) hi = mid;
    else lo = mid;
  }
  return hi;
}

export async function runMeterAtScale(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { meter } = ctx.options;
  const userCount = Math.ceil(meter.sessions / meter.perUser);
  const exhaustingCount = Math.max(1, Math.round(userCount * meter.exhaustingShare));
  const steadyCount = userCount - exhaustingCount;
  const rate = parseMoney(RATE);
  // exhausting user i runs out ~ (0.3 … 0.7) of the way through the window, counted from the start of its phase
  const startPhaseMs = ((exhaustingCount * meter.perUser) / ASSUMED_START_RATE) * 1000;
  const creditsOf = (i: number) => {
    const runFor = startPhaseMs + SETTLE_MS + (0.3 + (0.4 * i) / Math.max(1, exhaustingCount - 1)) * meter.windowMs;
    // perUser sessions burning rate per minute each, for runFor ms
    return rate * BigInt(meter.perUser) * BigInt(Math.round(runFor)) / 60_000n;
  };
  const exhaustingCredits = Array.from({ length: exhaustingCount }, (_, i) => creditsOf(i));
  ctx.progress.note(`  creating ${userCount} users (${exhaustingCount} set to run out of credits)`);
  const steadyUsers = await ctx.environment.createUsers(steadyCount, PLENTY);
  const exhaustingUsers = await ctx.environment.createUsers(exhaustingCount, (i) => formatMoney(exhaustingCredits[i]!));
  const cloneId = await ctx.environment.createClone(RATE);

  const set = await ctx.servers('meter', { gateways: 1, billing: true });
  const gateway = set.gateways[0]!;
  const connect = (pool: string, userIds: string[]) =>
    ctx.load.call('connect', { pool, url: gateway.url, userIds, secret: BENCH_JWT_SECRET, audience: BENCH_JWT_AUDIENCE, concurrency: 100, localAddresses: ['127.0.0.1'], timeoutMs: 60_000 });
  try {
    const steadyConnect = await connect('meter-steady', steadyUsers);
    const exhaustingConnect = await connect('meter-exhausting', exhaustingUsers);
    const connectFailures = steadyConnect.failed + exhaustingConnect.failed;
    ctx.progress.note(`  starting ${steadyCount * meter.perUser} sessions, then ${exhaustingCount * meter.perUser} that will run out`);
    const steadyStart = await ctx.load.call('startSessions', { pool: 'meter-steady', cloneId, perClient: meter.perUser, type: 'chat', concurrency: 100 });
    const exhaustingStart = await ctx.load.call('startSessions', { pool: 'meter-exhausting', cloneId, perClient: meter.perUser, type: 'chat', concurrency: 100 });
    const started = steadyStart.sessions.length + exhaustingStart.sessions.length;
    const startRate = started / ((steadyStart.durationMs + exhaustingStart.durationMs) / 1000);
    await sleep(SETTLE_MS);

    const sampler = new ProcSampler({ gateway: gateway.pid, billing: set.billing!.pid, load: ctx.load.pid, bench: process.pid });
    const redisStats = new RedisCommandStats(ctx.environment.redis);
    await redisStats.start();
    const metrics = new GatewayMetricsWindow(gateway.url);
    await metrics.start();
    sampler.start();
    const [steadyWindow, exhaustingWindow] = await Promise.all([
      ctx.load.call('meterWindow', { pool: 'meter-steady', durationMs: meter.windowMs, tickMs: meter.tickMs }),
      ctx.load.call('meterWindow', { pool: 'meter-exhausting', durationMs: meter.windowMs, tickMs: meter.tickMs }),
    ]);
    const cpu = sampler.stop();
    const redis = await redisStats.stop();
    const gatewaySelf = await metrics.stop().catch(() => undefined);

    // every exhausting session should have ended by now; give stragglers a moment
    const exhaustingIds = new Set(exhaustingStart.sessions.map((s) => s.sessionId));
    await waitUntil(async () => {
      const { ended } = await ctx.load.call('endedSessions', { pool: 'meter-exhausting' });
      return ended.filter((e) => exhaustingIds.has(e.sessionId)).length >= exhaustingIds.size;
    }, 5000, 250);
    const { ended, paused: exhaustingPaused } = await ctx.load.call('endedSessions', { pool: 'meter-exhausting' });
    const { ended: steadyEnded, paused: steadyPaused } = await ctx.load.call('endedSessions', { pool: 'meter-steady' });
    // the clients never pause: a pause here is the gateway deciding the (connected) user is gone
    const pausedWhileConnected = steadyPaused.length + exhaustingPaused.length;

    const byUser = new Map<string, StartedSession[]>();
    for (const s of exhaustingStart.sessions) byUser.set(s.userId, [...(byUser.get(s.userId) ?? []), s]);
    const exact = new Map<string, number>();
    exhaustingUsers.forEach((userId, i) => {
      const sessions = byUser.get(userId) ?? [];
      if (sessions.length === 0) return;
      const at = exactExhaustion(sessions.map((s) => s.startTime), rate, exhaustingCredits[i]!);
      for (const s of sessions) exact.set(s.sessionId, at);
    });
    const errors: number[] = [];
    const notifyDelays: number[] = [];
    let wrongReason = 0;
    const seen = new Set<string>();
    for (const e of ended) {
      const at = exact.get(e.sessionId);
      if (at === undefined || seen.has(e.sessionId)) continue;
      seen.add(e.sessionId);
      if (e.reason !== 'credits_exhausted') wrongReason += 1;
      errors.push(Math.abs(e.endTime - at));
      notifyDelays.push(e.receivedAt - at);
    }
    const notEnded = exact.size - seen.size;
    const queue = new BillingQueues(duplicateRedis(ctx.environment.redis), set.prefix);
    const backlog = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
    await queue.close();

    // the two pools are measured apart (summaries do not merge exactly): both are reported, the table takes the worse
    const tickP99 = Math.max(steadyWindow.lateness.p99, exhaustingWindow.lateness.p99);
    // every Redis command of the window (ticks, heartbeats, due events, checkpoints, their relays) per session-second
    const redisUsecPerSessionSecond = redis.totalUsec / Math.max(1, started * redis.seconds);
    const gatewayCores = cpu.cores['gateway'] ?? Number.NaN;
    const errorSummary = rounded(summarize(errors));
    const delaySummary = rounded(summarize(notifyDelays));
    const figures = {
      sessions: { requested: meter.sessions, started, startFailures: steadyStart.failed + exhaustingStart.failed, startErrors: { ...steadyStart.errors, ...exhaustingStart.errors }, startRate, connectFailures },
      users: { total: userCount, exhausting: exhaustingCount, perUser: meter.perUser },
      tickMs: meter.tickMs,
      windowSeconds: cpu.seconds,
      cpu,
      redis,
      redisUsecPerSessionSecond,
      gatewaySelf,
      ticks: {
        steady: { ...steadyWindow, lateness: rounded(steadyWindow.lateness), gapExcess: rounded(steadyWindow.gapExcess) },
        exhausting: { ...exhaustingWindow, lateness: rounded(exhaustingWindow.lateness), gapExcess: rounded(exhaustingWindow.gapExcess) },
        latenessP99: tickP99,
      },
      exhaustion: {
        sessions: exact.size,
        ended: seen.size,
        notEnded,
        wrongReason,
        errorMs: errorSummary,
        endedEventDelayMs: delaySummary,
      },
      steadySessionsEnded: steadyEnded.length,
      pausedWhileConnected,
      billingBacklogAfter: backlog,
    };
    const rows: TableRow[] = [
      { scenario: 'meter', metric: 'active sessions metered', unit: 'sessions', value: started, target: { op: '>=', value: 10_000 } },
      { scenario: 'meter', metric: 'gateway CPU', unit: 'cores', value: gatewayCores },
      { scenario: 'meter', metric: 'Redis time per active session-second', unit: 'µs', value: redisUsecPerSessionSecond, target: { op: '<=', value: 3 } },
      { scenario: 'meter', metric: 'Redis CPU', unit: 'cores', value: cpu.cores['redis'] ?? Number.NaN },
      { scenario: 'meter', metric: 'tick lateness p99', unit: 'ms', value: tickP99, target: { op: '<=', value: 100 } },
      { scenario: 'meter', metric: 'tick gap − interval p99', unit: 'ms', value: Math.max(steadyWindow.gapExcess.p99, exhaustingWindow.gapExcess.p99) },
      { scenario: 'meter', metric: '|end − exact exhaustion| p99', unit: 'ms', value: errorSummary.p99, target: { op: '<=', value: 50 } },
      { scenario: 'meter', metric: 'session:ended after exhaustion p99', unit: 'ms', value: delaySummary.p99 },
      { scenario: 'meter', metric: 'exhausting sessions not ended in time', unit: 'sessions', value: notEnded },
      { scenario: 'meter', metric: 'sessions paused while connected', unit: 'sessions', value: pausedWhileConnected },
    ];
    return { figures, rows, cpu: [{ window: `meter: ${started} sessions ticking`, breakdown: cpu, redis }] };
  } finally {
    await ctx.load.call('disconnect', { pool: 'meter-steady' });
    await ctx.load.call('disconnect', { pool: 'meter-exhausting' });
    await ctx.release(set);
  }
}
