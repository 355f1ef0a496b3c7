/**
 * `ProcSampler`: CPU time and memory of processes and of the whole machine, read from /proc (Linux only).
 * CPU is reported in cores (1.0 = one core busy for the whole window), from utime + stime in /proc/<pid>/stat.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ); 100 on every Linux the bench targets. */
const CLOCK_TICKS = 100;

export interface ProcSnapshot {
  at: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

/** CPU seconds and RSS of one process now, or undefined when it is gone. */
export function readProc(pid: number): ProcSnapshot | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name is in parentheses and may contain spaces: fields are counted after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
    return { at: performance.now(), cpuSeconds: (utime + stime) / CLOCK_TICKS, rssBytes: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/** Open file descriptors of a process and its soft limit. */
export function readFdUsage(pid: number): { open: number; limit: number } {
  const open = readdirSync(`/proc/${pid}/fd`).length;
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const limit = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 'NaN');
  return { open, limit };
}

/** Busy and total jiffies of the whole machine (from the first line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.reduce((sum, v) => sum + v, 0);
  return { busy: total - idle, total };
}

/** CPU seconds and command name of every process visible in /proc. */
function allProcesses(): Map<number, { comm: string; cpuSeconds: number }> {
  const found = new Map<number, { comm: string; cpuSeconds: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      found.set(Number(entry), { comm, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

export interface CpuBreakdown {
  seconds: number;
  /** Cores used over the window by each named process, by Redis, by Postgres (all its backends) and by the rest. */
  cores: Record<string, number>;
  /** Share of all cores busy over the window (0..1). */
  machineBusy: number;
}

/**
 * Measures CPU between `start()` and `stop()`: of the processes it is given by name, of `redis-server` and
 * `postgres` processes, and of everything else on the machine ("other": processes that are not the bench's, which
 * compete with it for the cores).
 */
export class ProcSampler {
  private before = new Map<number, { comm: string; cpuSeconds: number }>();
  private machineStart = machineTicks();
  private startedAt = performance.now();

  constructor(private readonly named: Record<string, number>) {}

  start(): void {
    this.startedAt = performance.now();
    this.machineStart = machineTicks();
    this.before = allProcesses();
  }

  /** Cores of a named process over the window. */
  stop(): CpuBreakdown {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const after = allProcesses();
    const names = new Map(Object.entries(this.named).map(([name, pid]) => [pid, name]));
    const cores: Record<string, number> = { redis: 0, postgres: 0, other: 0 };
    for (const name of Object.keys(this.named)) cores[name] = Number.NaN;
    for (const [pid, now] of after) {
      const then = this.before.get(pid);
      // a process that started during the window counts from zero
      const used = now.cpuSeconds - (then && then.comm === now.comm ? then.cpuSeconds : 0);
      const name = names.get(pid) ?? (now.comm === 'redis-server' ? 'redis' : now.comm === 'postgres' ? 'postgres' : 'other');
      cores[name] = (Number.isNaN(cores[name]!) ? 0 : cores[name]!) + used / seconds;
    }
    const machine = machineTicks();
    const total = machine.total - this.machineStart.total;
    return { seconds, cores, machineBusy: total > 0 ? (machine.busy - this.machineStart.busy) / total : Number.NaN };
  }
}
