/**
 * `LoadClient`: the bench's handle on its load process (scripts/bench/load-process.ts), a separate node process
 * that holds the socket.io clients, so the load it generates is not measured as the bench's own. It is spawned
 * through a shell that raises its open-files limit first; commands go over the IPC channel and resolve with their
 * results; progress lines it sends are handed to `onProgress`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT, trackBenchChild } from './bench-process.ts';
import type { ChildMessage, LoadCommandName, LoadCommands } from './load-protocol.ts';

/**
 * Heap flags of the load process: room for 20k clients, and a larger young generation so the ramp is not slowed by
 * scavenges that promote every new client's objects into a growing old generation.
 */
const LOAD_NODE_FLAGS = ['--max-old-space-size=4096', '--max-semi-space-size=64'];

export class LoadClient {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; command: string }>();
  private exited = false;
  private stderr = '';

  private constructor(child: ChildProcess, onProgress: (text: string) => void) {
    this.child = child;
    child.on('message', (message: ChildMessage) => {
      if (message.kind === 'progress') return onProgress(message.text);
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.kind === 'result') waiter.resolve(message.result);
      else waiter.reject(new Error(`load process: ${waiter.command} failed: ${message.message}`));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-5000);
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`load process exited (${signal ?? code}) during ${waiter.command}: ${this.stderr.slice(-2000)}`));
      }
      this.pending.clear();
    });
  }

  /** Starts the load process with the open-files limit raised to `fdLimit` (as far as the hard limit allows). */
  static start(fdLimit: number, onProgress: (text: string) => void, cpuProfileDir?: string): LoadClient {
    const script = path.join(import.meta.dirname, 'load-process.ts');
    const profile = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, '--cpu-prof-name=load.cpuprofile'] : [];
    const shell = `ulimit -n ${fdLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
    const child = spawn('/bin/sh', ['-c', shell, process.execPath, ...profile, ...LOAD_NODE_FLAGS, '--import', 'tsx', script], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    trackBenchChild(child);
    return new LoadClient(child, onProgress);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  call<C extends LoadCommandName>(command: C, params: LoadCommands[C]['params']): Promise<LoadCommands[C]['result']> {
    if (this.exited || !this.child.connected) return Promise.reject(new Error(`load process is gone: ${this.stderr.slice(-2000)}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, command });
      this.child.send({ id, command, params }, (error) => {
        if (!error) return;
        this.pending.delete(id);
        reject(new Error(`load process: sending ${command} failed: ${error.message}`));
      });
    });
  }

  /** Ends the load process (its clients close with it). */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect?.();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    this.child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}
