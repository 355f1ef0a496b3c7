/**
 * `spawnService`: one Tollgate process (a gateway, a billing worker) as `node --import tsx <script>` with its own
 * environment, its output captured (the tail kept), ready once `GET /healthz` answers 200; `kill(signal)` for
 * crashes, `stop()` for a clean stop (SIGTERM, then SIGKILL after a grace period). Every child still running is
 * killed when this process exits (`stopAllServices` stops them cleanly first, for signal handlers). Used by the chaos
 * run, the real-process tests and the bench (which adds node flags and a raised open-files limit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const READY_TIMEOUT_MS = 60_000;
const TERM_GRACE_MS = 15_000;
const OUTPUT_LIMIT = 1_000_000;

export interface ServiceProcess {
  name: string;
  pid: number;
  port: number;
  url: string;
  /** What it printed (stdout and stderr, the last ~MB). */
  output(): string;
  readonly exited: boolean;
  /** Resolves with the exit code (null when a signal ended it) once the process has exited, however. */
  wait(): Promise<number | null>;
  /** Sends `signal` (default SIGTERM); resolves with the exit code (null when a signal ended it) once it exited. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGTERM, then SIGKILL after the grace period; resolves once it exited. */
  stop(): Promise<number | null>;
}

export interface ServiceOptions {
  name: string;
  /** Script path relative to the repository root. */
  script: string;
  /** The port its /healthz answers on (the caller puts it in `env`). */
  port: number;
  env: Record<string, string>;
  /** More node flags, after tsx is loaded and before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Open-files limit wanted (`ulimit -n` in a shell that then execs node, so the pid stays node's); the hard limit caps it. */
  fdLimit?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL (default 15 s). */
  termGraceMs?: number;
}

const running = new Set<ChildProcess>();

/** Registers a child started some other way, so it is killed with the rest when this process exits. */
export function trackChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Every child still running, SIGTERMed then SIGKILLed after `graceMs` (signal handlers and failures call this). */
export async function stopAllServices(graceMs = TERM_GRACE_MS): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Spawns the process without waiting for it (see `waitHealthy`). */
export function spawnService(options: ServiceOptions): ServiceProcess {
  const args = ['--import', 'tsx', ...(options.nodeArgs ?? []), options.script];
  const wanted = options.fdLimit ?? 0;
  // raise the soft limit as far as asked (or as far as the hard limit lets), then become node
  const shell = `ulimit -n ${wanted} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  const child =
    wanted > 0
      ? spawn('/bin/sh', ['-c', shell, process.execPath, ...args], { cwd: ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { cwd: ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT / 2);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exited = false;
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exited = true;
      running.delete(child);
      resolve(code);
    });
    child.once('error', (error) => {
      append(Buffer.from(`\n[spawn] failed: ${error.message}\n`));
      exited = true;
      running.delete(child);
      resolve(null);
    });
  });
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!exited) child.kill(signal);
    return exit;
  };
  return {
    name: options.name,
    pid: child.pid ?? -1,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    output: () => output,
    get exited() {
      return exited;
    },
    wait: () => exit,
    kill,
    async stop() {
      const timer = setTimeout(() => void kill('SIGKILL'), options.termGraceMs ?? TERM_GRACE_MS);
      const code = await kill('SIGTERM');
      clearTimeout(timer);
      return code;
    },
  };
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

/** Resolves once the process answers GET /healthz 200; otherwise kills it and fails with its last output. */
export async function waitHealthy(service: ServiceProcess, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!service.exited && Date.now() <= deadline) {
    if (await healthy(service.url)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const why = service.exited ? 'exited before it was healthy' : `was not healthy within ${timeoutMs} ms`;
  await service.kill('SIGKILL');
  throw new Error(`${service.name} (pid ${service.pid}, ${service.url}) ${why}; output:\n${service.output().slice(-4000)}`);
}
