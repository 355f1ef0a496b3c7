/**
 * `spawnBenchProcess`: one server process of the bench (a gateway, the billing worker or the bare Socket.IO
 * baseline), as tests/support/processes.ts spawns them — `node --import tsx <script>` with its own environment and
 * captured output — plus what a benchmark needs: the open-files limit raised with `ulimit -n` before node starts
 * (a shell that `exec`s node, so the pid is node's), optional `--cpu-prof`, and a registry that kills whatever is
 * still running when the bench process exits for any reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { readFdUsage } from './proc-stats.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** How long a process may take to answer GET /healthz 200. */
const READY_TIMEOUT_MS = 60_000;
/** How long `stop()` lets a process finish on SIGTERM before SIGKILL (longer when it must write a CPU profile). */
const TERM_GRACE_MS = 15_000;
const PROFILED_TERM_GRACE_MS = 90_000;
const OUTPUT_LIMIT = 1_000_000;

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

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Registers a child the bench started some other way (the load process), so it is stopped with the rest. */
export function trackBenchChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Every bench process still running, SIGTERMed then SIGKILLed (signal handlers and failures call this). */
export async function stopAllBenchProcesses(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), TERM_GRACE_MS);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Spawns the process and resolves once GET /healthz on `port` answers 200 (rejects with its output otherwise). */
export async function spawnBenchProcess(options: SpawnOptions): Promise<BenchProcess> {
  const nodeArgs = ['--import', 'tsx', '--expose-gc', '--import', path.join(ROOT, 'scripts/bench/gc-on-signal.ts')];
  if (options.cpuProfileDir) {
    nodeArgs.unshift('--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${options.name}.cpuprofile`);
  }
  const wanted = options.fdLimit ?? 0;
  // raise the soft limit as far as asked (or as far as the hard limit lets), then become node
  const shell = `ulimit -n ${wanted} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  const child = spawn('/bin/sh', ['-c', wanted > 0 ? shell : 'exec "$0" "$@"', process.execPath, ...nodeArgs, options.script], {
    cwd: ROOT,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT / 2);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      append(Buffer.from(`\n[bench] spawn failed: ${error.message}\n`));
      exited = true;
      running.delete(child);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async () => {
    if (exited) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), options.cpuProfileDir ? PROFILED_TERM_GRACE_MS : TERM_GRACE_MS);
    child.kill('SIGTERM');
    await exit;
    clearTimeout(timer);
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!exited && !(await healthy(url))) {
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (exited || !(await healthy(url))) {
    await stop();
    throw new Error(`${options.name} did not become healthy on ${url}; output:\n${output.slice(-3000)}`);
  }
  const pid = child.pid ?? -1;
  return {
    name: options.name,
    pid,
    port: options.port,
    url,
    fdLimit: readFdUsage(pid).limit,
    output: () => output,
    get exited() {
      return exited;
    },
    stop,
    async collectGarbage() {
      if (exited) return;
      child.kill('SIGUSR2');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    },
  };
}
