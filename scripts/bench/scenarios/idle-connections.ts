/**
 * Scenario 1, idle connections: ramp N authenticated connections (one user each) onto one gateway, hold them, and
 * read the gateway's RSS and heap, each after a full garbage collection (scripts/bench/gc-on-signal.ts); then the
 * same ramp onto the bare Socket.IO server (no auth, no Redis). Figures: connect rate (connections / ramp time), RSS per connection ((RSS after the hold − RSS before the ramp) / connections),
 * disconnects during the hold. N is capped by the open-files limit the processes got (reported when it is).
 */
import { BENCH_JWT_AUDIENCE, BENCH_JWT_SECRET } from '../bench-environment.ts';
import type { BenchProcess } from '../bench-process.ts';
import { ProcSampler, readFdUsage, readProc, type CpuBreakdown } from '../proc-stats.ts';
import type { TableRow } from '../report-table.ts';
import { sleep, type ScenarioContext, type ScenarioResult } from '../scenario-context.ts';

/** Descriptors kept free in each process beyond the connections (pools, pipes, the listener). */
const FD_RESERVE = 64;
const WARM_UP_CONNECTIONS = 100;

interface RampFigures {
  requested: number;
  attempted: number;
  /** Why fewer than requested were attempted, if so. */
  cappedBy: string | null;
  connected: number;
  failed: number;
  errors: Record<string, number>;
  rampSeconds: number;
  connectRate: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPerConnectionKiB: number;
  /** From the gateway's /metrics (V8 heap in use); NaN for the bare server, which has none. */
  heapPerConnectionKiB: number;
  disconnectsDuringHold: number;
  cpuDuringRamp: CpuBreakdown;
  serverFdLimit: number;
}

/** V8 heap in use, from GET /metrics where the server has it (NaN otherwise). */
async function heapUsed(url: string): Promise<number> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) return Number.NaN;
    const match = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(await response.text());
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function ramp(ctx: ScenarioContext, server: BenchProcess, userIds: string[], pool: string): Promise<RampFigures> {
  const { idle } = ctx.options;
  const serverFds = readFdUsage(server.pid);
  const loadFds = await ctx.load.call('fdUsage', {});
  const room = Math.min(serverFds.limit - serverFds.open - FD_RESERVE, loadFds.limit - loadFds.open - FD_RESERVE);
  const attempted = Math.max(0, Math.min(idle.connections, room, userIds.length));
  const cappedBy =
    attempted < idle.connections
      ? `open-files limit: server ${serverFds.limit} (${serverFds.open} in use), load process ${loadFds.limit} (${loadFds.open} in use); ` +
        'raising it with ulimit -n failed (hard limit)'
      : null;
  if (cappedBy) ctx.progress.note(`  ${pool}: ${attempted} of ${idle.connections} connections — ${cappedBy}`);
  const connectParams = {
    url: server.url,
    secret: BENCH_JWT_SECRET,
    audience: BENCH_JWT_AUDIENCE,
    concurrency: idle.concurrency,
    localAddresses: Array.from({ length: idle.sourceAddresses }, (_, i) => `127.0.0.${i + 1}`),
    timeoutMs: 60_000,
  };
  // warm-up: the first connects compile the handshake path; the RSS baseline is taken after them
  await ctx.load.call('connect', { ...connectParams, pool: `${pool}-warm`, userIds: userIds.slice(0, Math.min(WARM_UP_CONNECTIONS, attempted)) });
  await ctx.load.call('disconnect', { pool: `${pool}-warm` });
  await sleep(1000);
  await server.collectGarbage();
  const heapBefore = await heapUsed(server.url);
  const before = readProc(server.pid)!;
  const sampler = new ProcSampler({ server: server.pid, load: ctx.load.pid });
  sampler.start();
  const result = await ctx.load.call('connect', { ...connectParams, pool, userIds: userIds.slice(0, attempted) });
  const cpu = sampler.stop();
  ctx.progress.note(`  ${pool}: ${result.connected} connected in ${(result.durationMs / 1000).toFixed(1)} s (${result.failed} failed); holding`);
  await sleep(idle.holdMs);
  await server.collectGarbage();
  const after = readProc(server.pid)!;
  const heapAfter = await heapUsed(server.url);
  const stats = await ctx.load.call('poolStats', { pool });
  await ctx.load.call('disconnect', { pool });
  return {
    requested: idle.connections,
    attempted,
    cappedBy,
    connected: result.connected,
    failed: result.failed,
    errors: result.errors,
    rampSeconds: result.durationMs / 1000,
    connectRate: result.connected / (result.durationMs / 1000),
    rssBeforeBytes: before.rssBytes,
    rssAfterBytes: after.rssBytes,
    rssPerConnectionKiB: result.connected > 0 ? (after.rssBytes - before.rssBytes) / result.connected / 1024 : Number.NaN,
    heapPerConnectionKiB: result.connected > 0 ? (heapAfter - heapBefore) / result.connected / 1024 : Number.NaN,
    disconnectsDuringHold: stats.disconnects,
    cpuDuringRamp: cpu,
    serverFdLimit: server.fdLimit,
  };
}

export async function runIdleConnections(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { idle } = ctx.options;
  ctx.progress.note(`  creating ${idle.connections} users`);
  const userIds = await ctx.environment.createUsers(idle.connections, '100.0000');

  const servers = await ctx.servers('idle', { gateways: 1, billing: false });
  let gateway: RampFigures;
  try {
    gateway = await ramp(ctx, servers.gateways[0]!, userIds, 'idle-gateway');
  } finally {
    await ctx.release(servers);
  }
  const bareServer = await ctx.bare('idle');
  let bare: RampFigures;
  try {
    bare = await ramp(ctx, bareServer, userIds, 'idle-bare');
  } finally {
    await ctx.releaseBare(bareServer);
  }

  const rows: TableRow[] = [
    { scenario: 'idle', metric: 'connections held', unit: 'conns', value: gateway.connected - gateway.disconnectsDuringHold, baseline: bare.connected - bare.disconnectsDuringHold, target: { op: '>=', value: 20_000 } },
    { scenario: 'idle', metric: 'connect rate', unit: 'conn/s', value: gateway.connectRate, baseline: bare.connectRate, ratio: gateway.connectRate / bare.connectRate },
    { scenario: 'idle', metric: 'RSS per connection', unit: 'KiB', value: gateway.rssPerConnectionKiB, baseline: bare.rssPerConnectionKiB, ratio: gateway.rssPerConnectionKiB / bare.rssPerConnectionKiB, target: { op: '<=', value: 30 } },
  ];
  return { figures: { gateway, bare }, rows, cpu: [{ window: 'idle: gateway ramp', breakdown: gateway.cpuDuringRamp }, { window: 'idle: bare ramp', breakdown: bare.cpuDuringRamp }] };
}
