/**
 * `npm run bench`: Tollgate's benchmark. Creates a throwaway migrated database and a unique Redis prefix, starts
 * the real gateway and billing processes (offline responder) and a separate load process (socket.io-client), runs
 * the chosen scenarios with their baselines, prints one table and writes bench-results.json (every figure and the
 * machine). Targets are shown with ✓/✗ and never fail the run; the run fails only when a scenario could not run.
 * Everything it started is stopped and removed at the end, on Ctrl-C and on failure.
 *
 *   npm run bench -- [--quick] [--cluster] [--scenario idle,chat,churn,meter,settle,fanout] [--json file] [--profile] [sizes…]
 *
 * `--cluster` runs the scenarios (churn and meter by default) on a private Redis Cluster beside a private single
 * Redis, reports Redis time per shard, and compares the two (scripts/bench/cluster-comparison.ts).
 *
 * See docs/performance.md for what each figure means and the results on this project's machine.
 *
 * package.json runs it as `node --import tsx …`, not through the `tsx` command: tsx's wrapper SIGKILLs its child
 * when the child does not confirm a relayed Ctrl-C within 30 ms, which on a busy machine cut the cleanup short.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchEnvironment } from './bench-environment.ts';
import { parseBenchOptions, type BenchOptions, type ScenarioName } from './bench-options.ts';
import { ROOT, stopAllBenchProcesses } from './bench-process.ts';
import { LoadClient } from './load-client.ts';
import { machineInfo } from './machine-info.ts';
import { Progress } from './progress.ts';
import { judge, renderTable, type TableRow } from './report-table.ts';
import { ScenarioContext, WANTED_FD_LIMIT, type ScenarioResult } from './scenario-context.ts';
import { runChatRoundTrip } from './scenarios/chat-round-trip.ts';
import { runChurn } from './scenarios/churn.ts';
import { runGatewayFanOut } from './scenarios/gateway-fan-out.ts';
import { runIdleConnections } from './scenarios/idle-connections.ts';
import { runMeterAtScale } from './scenarios/meter-at-scale.ts';
import { runSettlement } from './scenarios/settlement.ts';
import { clusterComparison } from './cluster-comparison.ts';
import { startRedisServer, type RedisServer } from '../lib/private-redis.ts';
import { startRedisCluster, type RedisCluster } from '../lib/private-redis-cluster.ts';

const RUNNERS: Record<ScenarioName, { title: string; run: (ctx: ScenarioContext) => Promise<ScenarioResult> }> = {
  idle: { title: 'idle connections', run: runIdleConnections },
  chat: { title: 'chat round trip', run: runChatRoundTrip },
  churn: { title: 'users coming and going', run: runChurn },
  meter: { title: 'meter at scale', run: runMeterAtScale },
  settle: { title: 'settlement', run: runSettlement },
  fanout: { title: 'fan-out across gateways', run: runGatewayFanOut },
};

let options: BenchOptions;
try {
  options = parseBenchOptions(process.argv.slice(2));
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}

const progress = new Progress();
// A bench entry point: its two connection settings are read here (as scripts/run-tests.ts reads its own).
const databaseUrl = process.env['BENCH_DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env['BENCH_REDIS_URL'] || 'redis://127.0.0.1:6379';
const cpuProfileDir = options.profile ? { cpuProfileDir: path.resolve(ROOT, options.profileDir) } : {};

/**
 * One run of the scenarios on one Redis: the usual run has one pass on BENCH_REDIS_URL; `--cluster` has a pass on a
 * private single Redis, one on a private cluster and one on the cluster with acks waiting for a replica (churn only).
 */
interface Pass {
  /** Empty for the usual run; else the suffix of the pass's table rows and its key in bench-results.json. */
  key: string;
  label: string;
  scenarios: ScenarioName[];
  environment: () => BenchEnvironment;
}

let redisServer: RedisServer | undefined;
let redisCluster: RedisCluster | undefined;
const environments: BenchEnvironment[] = [];
let load: LoadClient | undefined;

let cleaning: Promise<void> | undefined;
let interrupted = false;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await load?.close().catch(() => undefined);
    for (const environment of environments) {
      await environment.close().catch((error: unknown) => console.error(`bench: cleanup failed: ${(error as Error).message}`));
    }
    await stopAllBenchProcesses();
    await Promise.all([redisServer?.close(), redisCluster?.close()]).catch(() => undefined);
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    progress.note(`\nbench: ${signal}, stopping everything it started`);
    void cleanUp().finally(() => process.exit(130));
  });
}
process.on('uncaughtException', (error) => {
  console.error('bench: unexpected error', error);
  void cleanUp().finally(() => process.exit(1));
});

const startedAt = new Date();
const machine = machineInfo();
progress.note(
  `tollgate bench${options.quick ? ' (quick)' : ''}${options.cluster ? ' on a Redis Cluster beside one Redis' : ''}: ${options.scenarios.join(', ')} on ${machine.cpuModel}, ${machine.cores} cores, ` +
    `${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, node ${machine.node}, ${machine.gitCommit.slice(0, 10)}${machine.gitDirty ? '+dirty' : ''}, ` +
    `load average ${machine.loadAverage.join(' ')}`,
);

const newEnvironment = (key: string, redis: { redisUrl: string; redisClusterNodes?: string }, settings: Record<string, string> = {}) => {
  const environment = new BenchEnvironment({
    databaseUrl,
    ...redis,
    ...cpuProfileDir,
    ...(key ? { processNamePrefix: key } : {}),
    settings: { ...options.settings, ...settings },
  });
  environments.push(environment);
  return environment;
};

const results: Record<string, unknown> = {};
const failures: Record<string, string> = {};
const rows: TableRow[] = [];
const cpuWindows: ScenarioResult['cpu'] = [];
/** What each pass's scenarios returned, for the cluster comparison. */
const passResults = new Map<string, Partial<Record<ScenarioName, ScenarioResult>>>();
try {
  let passes: Pass[];
  if (options.cluster) {
    [redisServer, redisCluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
    progress.note(`private Redis on ${redisServer.port}; private Redis Cluster (3 masters + 3 replicas) on ${redisCluster.nodeList}; both AOF everysec`);
    const cluster = { redisUrl, redisClusterNodes: redisCluster.nodeList };
    passes = [
      { key: 'one', label: 'one Redis', scenarios: options.scenarios, environment: () => newEnvironment('one', { redisUrl: redisServer!.url }) },
      { key: 'cluster', label: 'cluster', scenarios: options.scenarios, environment: () => newEnvironment('cluster', cluster) },
      {
        key: 'cluster-acks',
        label: 'cluster, acks wait for a replica',
        scenarios: options.scenarios.filter((name) => name === 'churn'),
        environment: () => newEnvironment('cluster-acks', cluster, { REDIS_ACK_REPLICAS: '1' }),
      },
    ];
  } else {
    passes = [{ key: '', label: '', scenarios: options.scenarios, environment: () => newEnvironment('', { redisUrl }) }];
  }
  load = LoadClient.start(WANTED_FD_LIMIT, (text) => progress.update(text), options.profile ? path.resolve(ROOT, options.profileDir) : undefined);
  const memo = new Map<string, Promise<unknown>>();
  for (const pass of passes) {
    if (interrupted || pass.scenarios.length === 0) continue;
    const environment = pass.environment();
    await environment.open();
    progress.note(`${pass.label ? `\n■ ${pass.label}: ` : ''}database ${environment.databaseName}, Redis prefix ${environment.prefix}`);
    const ctx = new ScenarioContext(environment, load, options, progress, memo);
    const ran: Partial<Record<ScenarioName, ScenarioResult>> = {};
    passResults.set(pass.key, ran);
    for (const name of pass.scenarios) {
      if (interrupted) break;
      const runner = RUNNERS[name];
      const resultKey = pass.key ? `${name}@${pass.key}` : name;
      const began = performance.now();
      progress.note(`\n▶ ${runner.title}${pass.label ? ` (${pass.label})` : ''}`);
      try {
        const result = await runner.run(ctx);
        ran[name] = result;
        results[resultKey] = { ...result.figures, seconds: (performance.now() - began) / 1000 };
        rows.push(...result.rows.map((row) => judge(pass.label ? { ...row, scenario: `${row.scenario} · ${pass.label}` } : row)));
        cpuWindows.push(...result.cpu.map((window) => (pass.label ? { ...window, window: `${window.window} (${pass.label})` } : window)));
        progress.note(`  done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
      } catch (error) {
        if (interrupted) break;
        failures[resultKey] = error instanceof Error ? (error.stack ?? error.message) : String(error);
        progress.note(`  ${runner.title} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    await environment.close();
  }
  if (options.cluster) rows.push(...clusterComparison(passResults).map(judge));
} catch (error) {
  failures[options.scenarios[0]!] ??= error instanceof Error ? (error.stack ?? error.message) : String(error);
  progress.note(`bench: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  await cleanUp();
}

const finishedAt = new Date();
const report = {
  startedAt: startedAt.toISOString(),
  finishedAt: finishedAt.toISOString(),
  seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
  command: ['npm', 'run', 'bench', '--', ...process.argv.slice(2)].join(' '),
  machine,
  databases: environments.map((e) => e.databaseName),
  redisPrefixes: environments.map((e) => e.prefix),
  settings: options.settings,
  loadAverageAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100),
  options,
  scenarios: results,
  failures,
  table: rows,
};
const jsonPath = path.resolve(process.cwd(), options.jsonPath);
writeFileSync(jsonPath, `${JSON.stringify(report, (_key, value) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`);

console.log(`\nTollgate bench, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}`);
if (Object.keys(options.settings).length > 0) {
  console.log(`settings: ${Object.entries(options.settings).map(([key, value]) => `${key}=${value}`).join(' ')}`);
}
console.log(renderTable(rows));
if (cpuWindows.length > 0) {
  console.log('\nCPU during the measured windows (cores; "other" = processes that are not this bench\'s):');
  for (const { window, breakdown, redis } of cpuWindows) {
    const parts = Object.entries(breakdown.cores)
      .filter(([, cores]) => Number.isFinite(cores))
      .sort(([, a], [, b]) => b - a)
      .map(([name, cores]) => `${name} ${cores.toFixed(2)}`);
    console.log(`  ${window} (${breakdown.seconds.toFixed(1)} s, machine ${(breakdown.machineBusy * 100).toFixed(0)} % busy): ${parts.join(', ')}`);
    if (redis) {
      const commands = redis.commands.slice(0, 4).map((c) => `${c.command} ${c.calls} × ${c.usecPerCall} µs`);
      console.log(`    redis: ${(redis.scriptBusy * 100).toFixed(0)} % of the window in Lua scripts; ${commands.join(', ')}`);
      if (redis.shards.length > 1) {
        console.log(`    redis shards (share of command time, busy share of the window): ${redis.shards.map((s) => `${s.node} ${(s.share * 100).toFixed(0)} % (${(s.busy * 100).toFixed(0)} %)`).join(', ')}`);
      }
      if (redis.scripts && redis.scripts.scripts.length > 0) {
        const scripts = redis.scripts.scripts.slice(0, 8).map((c) => `${c.script} ${c.calls} × ${c.usecPerCall} µs`);
        const missed = redis.scripts.missed > 0 ? ` (a sample: ${redis.scripts.missed} log entries missed)` : '';
        console.log(`    redis scripts${missed}: ${scripts.join(', ')}`);
      }
    }
  }
}
console.log(`\nresults: ${jsonPath}${options.profile ? `; CPU profiles: ${path.resolve(ROOT, options.profileDir)}` : ''}`);
const failed = Object.keys(failures);
if (failed.length > 0) {
  console.error(`bench: ${failed.length} scenario(s) failed: ${failed.join(', ')}`);
  for (const [name, why] of Object.entries(failures)) console.error(`--- ${name}\n${why}`);
  process.exit(1);
}
process.exit(0);
