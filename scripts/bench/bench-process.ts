/**
 * `spawnBenchProcess`: one server process of the bench (a gateway, the billing worker or the bare Socket.IO
 * baseline), spawned as the chaos run and the real-process tests spawn theirs (scripts/lib/service-process.ts), plus
 * what a benchmark needs: the open-files limit raised with `ulimit -n`, optional `--cpu-prof`, and a full garbage
 * collection on demand (`--expose-gc` + scripts/bench/gc-on-signal.ts) so memory is read on what is kept.
 */
import path from 'node:path';
import { ROOT, spawnService, stopAllServices, trackChild, waitHealthy } from '../lib/service-process.ts';
import { readFdUsage } from './proc-stats.ts';

export { ROOT };
/** Registers a child the bench started some other way (the load process), so it is stopped with the rest. */
export const trackBenchChild = trackChild;
/** Every bench process still running, SIGTERMed then SIGKILLed (signal handlers and failures call this). */
export const stopAllBenchProcesses = (): Promise<void> => stopAllServices();

/** How long a process may take to answer GET /healthz 200. */
const READY_TIMEOUT_MS = 60_000;
/** How long `stop()` lets a process finish on SIGTERM before SIGKILL (longer when it must write a CPU profile). */
const TERM_GRACE_MS = 15_000;
const PROFILED_TERM_GRACE_MS = 90_000;

export interface BenchProcess {
  name: string;
  pid: number;
  port: number;
  url: string;
  /** The open-files limit the process got (after `ulimit -n`). */
  fdLimit: number;
  output(): string;
  readonly exited: boolean;
  /** SIGTERM, then SIGKILL after a grace period; resolves once it exited. */
  stop(): Promise<void>;
  /** Runs a full garbage collection in the process (scripts/bench/gc-on-signal.ts) and gives it a second. */
  collectGarbage(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Script path relative to the repository root. */
  script: string;
  port: number;
  env: Record<string, string>;
  /** Open-files limit wanted (`ulimit -n`); the hard limit caps it. */
  fdLimit?: number;
  /** Directory for a `--cpu-prof` profile written when the process exits. */
  cpuProfileDir?: string;
}

/** Spawns the process and resolves once GET /healthz on `port` answers 200 (rejects with its output otherwise). */
export async function spawnBenchProcess(options: SpawnOptions): Promise<BenchProcess> {
  const nodeArgs = ['--expose-gc', '--import', path.join(ROOT, 'scripts/bench/gc-on-signal.ts')];
  if (options.cpuProfileDir) {
    nodeArgs.unshift('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${options.name}.cpuprofile`);
  }
  const service = spawnService({
    name: options.name,
    script: options.script,
    port: options.port,
    env: options.env,
    nodeArgs,
    ...(options.fdLimit ? { fdLimit: options.fdLimit } : {}),
    termGraceMs: options.cpuProfileDir ? PROFILED_TERM_GRACE_MS : TERM_GRACE_MS,
  });
  await waitHealthy(service, READY_TIMEOUT_MS);
  return {
    name: service.name,
    pid: service.pid,
    port: service.port,
    url: service.url,
    fdLimit: readFdUsage(service.pid).limit,
    output: () => service.output(),
    get exited() {
      return service.exited;
    },
    async stop() {
      await service.stop();
    },
    async collectGarbage() {
      if (service.exited) return;
      process.kill(service.pid, 'SIGUSR2');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    },
  };
}
