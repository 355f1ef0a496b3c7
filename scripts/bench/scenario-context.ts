/**
 * `ScenarioContext`: what a scenario gets — the environment (database, Redis), the load process, the options,
 * progress output, and server processes. A full run gives each scenario (and each phase that must start clean)
 * fresh processes on a fresh key prefix and stops them after; `--quick` shares one set for the whole run, because
 * starting node + tsx processes costs seconds each and the quick run only checks that every figure is produced.
 * Every process runs with the same bench settings (BENCH_GATEWAY_ENV), so sharing changes no behaviour.
 */
import type { BenchOptions } from './bench-options.ts';
import type { BenchEnvironment } from './bench-environment.ts';
import type { BenchProcess } from './bench-process.ts';
import type { LoadClient } from './load-client.ts';
import type { CpuBreakdown } from './proc-stats.ts';
import type { RedisWindow } from './redis-command-stats.ts';
import type { Progress } from './progress.ts';
import type { TableRow } from './report-table.ts';

/** Open-files limit asked for every process (the hard limit may cap it; scenarios read what they got). */
export const WANTED_FD_LIMIT = 65_536;

/** The gateway settings of the bench: per-socket and per-user limits out of the way, no minimum start balance. */
export function benchGatewayEnv(options: BenchOptions): Record<string, string> {
  return {
    EVENTS_PER_SECOND: '1000000',
    EVENT_BURST: '1000000',
    MESSAGE_RATE_PER_MIN: '100000000',
    MAX_OPEN_SESSIONS: String(Math.max(options.meter.perUser, options.settle.perUser, 1)),
    MIN_START_SECONDS: '0',
    // the runs are shorter than these; a chat must not pause for idleness mid-run
    IDLE_PAUSE_MS: '3600000',
    PAUSED_END_MS: '3600000',
    METER_TICK_MS: String(options.meter.tickMs),
  };
}

export interface ServerSet {
  prefix: string;
  gateways: BenchProcess[];
  billing: BenchProcess | undefined;
}

export interface ScenarioResult {
  /** Every figure the scenario measured (bench-results.json). */
  figures: Record<string, unknown>;
  rows: TableRow[];
  /** Where the CPU went during the scenario's measured windows (printed under the table). */
  cpu: Array<{ window: string; breakdown: CpuBreakdown; redis?: RedisWindow }>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `intervalMs` until it is true or `timeoutMs` passed; returns whether it became true. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

export class ScenarioContext {
  private shared: ServerSet | undefined;
  private sharedBare: BenchProcess | undefined;
  private readonly env: Record<string, string>;

  constructor(
    readonly environment: BenchEnvironment,
    readonly load: LoadClient,
    readonly options: BenchOptions,
    readonly progress: Progress,
    private readonly memo = new Map<string, Promise<unknown>>(),
  ) {
    this.env = benchGatewayEnv(options);
  }

  /**
   * What `run` gives, run once per bench run under `key` (shared by the passes of `--cluster`): a baseline that does
   * not depend on Redis — the bare server's sweep — is measured once and printed beside every pass.
   */
  once<T>(key: string, run: () => Promise<T>): Promise<T> {
    let result = this.memo.get(key) as Promise<T> | undefined;
    if (!result) {
      result = run();
      this.memo.set(key, result);
    }
    return result;
  }

  /**
   * Gateways (and a billing worker) for a scenario or phase: fresh ones, or the shared set in --quick. `needs.env`
   * adds settings for this set's processes (full runs only: --quick shares one set).
   */
  async servers(label: string, needs: { gateways: number; billing: boolean; env?: Record<string, string> }): Promise<ServerSet> {
    if (this.options.quick) {
      this.shared ??= { prefix: this.environment.newPrefix('shared'), gateways: [], billing: undefined };
      const set = this.shared;
      const starting: Promise<unknown>[] = [];
      for (let i = set.gateways.length; i < needs.gateways; i++) {
        starting.push(this.startGateway(`shared-gateway-${i + 1}`, set.prefix).then((p) => (set.gateways[i] = p)));
      }
      if (needs.billing && !set.billing) starting.push(this.startBilling('shared-billing', set.prefix).then((p) => (set.billing = p)));
      await Promise.all(starting);
      return { prefix: set.prefix, gateways: set.gateways.slice(0, needs.gateways), billing: needs.billing ? set.billing : undefined };
    }
    const prefix = this.environment.newPrefix(label);
    this.progress.note(`  starting ${needs.gateways} gateway(s)${needs.billing ? ' and a billing worker' : ''} (${label})`);
    const [billing, ...gateways] = await Promise.all([
      needs.billing ? this.startBilling(`${label}-billing`, prefix, needs.env) : Promise.resolve(undefined),
      ...Array.from({ length: needs.gateways }, (_, i) => this.startGateway(`${label}-gateway-${i + 1}`, prefix, needs.env)),
    ]);
    return { prefix, gateways: gateways as BenchProcess[], billing };
  }

  /** Stops a set from `servers` (nothing in --quick, where the set is shared). */
  async release(set: ServerSet): Promise<void> {
    if (this.options.quick) return;
    await Promise.all([...set.gateways.map((g) => g.stop()), set.billing?.stop()]);
  }

  /** The bare Socket.IO baseline server. */
  async bare(label: string): Promise<BenchProcess> {
    if (this.options.quick) {
      this.sharedBare ??= await this.environment.startBare('shared-bare', { fdLimit: WANTED_FD_LIMIT });
      return this.sharedBare;
    }
    return this.environment.startBare(`${label}-bare`, { fdLimit: WANTED_FD_LIMIT });
  }

  async releaseBare(bare: BenchProcess): Promise<void> {
    if (!this.options.quick) await bare.stop();
  }

  private startGateway(name: string, prefix: string, env: Record<string, string> = {}): Promise<BenchProcess> {
    return this.environment.startGateway(name, prefix, { env: { ...this.env, ...env }, fdLimit: WANTED_FD_LIMIT, profile: this.options.profile });
  }

  private startBilling(name: string, prefix: string, env: Record<string, string> = {}): Promise<BenchProcess> {
    return this.environment.startBilling(name, prefix, { env: { ...this.env, ...env }, profile: this.options.profile });
  }
}
