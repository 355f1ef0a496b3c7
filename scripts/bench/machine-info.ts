/** `machineInfo`: what the figures were measured on — CPU, cores, memory, OS, node, git commit, limits. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ROOT } from './bench-process.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  os: string;
  node: string;
  gitCommit: string;
  /** Uncommitted changes in the working tree when the bench ran. */
  gitDirty: boolean;
  /** Open-files limit of the bench process (soft/hard). */
  fdLimit: { soft: number; hard: number };
  ephemeralPorts: string;
  /** 1, 5 and 15 minute load averages when the bench started: above the core count, others compete for the CPU. */
  loadAverage: number[];
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const limits = read(`/proc/${process.pid}/limits`);
  const files = /Max open files\s+(\d+)\s+(\d+)/.exec(limits);
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: git(['status', '--porcelain']) !== '',
    fdLimit: { soft: Number(files?.[1] ?? NaN), hard: Number(files?.[2] ?? NaN) },
    ephemeralPorts: read('/proc/sys/net/ipv4/ip_local_port_range').replace(/\s+/, '-'),
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}
