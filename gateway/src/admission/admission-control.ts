/**
 * Admission control: the gateway measures its own load every ADMISSION_SAMPLE_MS — event-loop delay, replies
 * waiting for a slot, the live-state connection's round trip — and while it is past a limit (load-assessment.ts) it
 * refuses new work with `overloaded` and a retry hint (new handshakes of users with no open session, and
 * `session:start`) and reports itself not ready (`GET /readyz`), so a load balancer sends new users elsewhere and the
 * users it has keep getting answers in bounded time.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { AppError } from '#shared/errors/app-error.ts';
import { assessLoad, INITIAL_LOAD_STATE, type LoadLimits, type LoadSignals, type LoadState } from './load-assessment.ts';

export interface AdmissionOptions {
  limits: LoadLimits;
  /** How often the signals are sampled (ms). */
  sampleMs: number;
  /** How long every signal must stay under its limit before new work is taken again (ms). */
  calmMs: number;
  /** The base of the retry hint; each refusal hints between 0.5× and 1.5× of it, so refused clients spread out. */
  retryMs: number;
  /** Replies waiting for a slot now. */
  repliesWaiting(): number;
  /** One round trip on the live-state connection. */
  pingRedis(): Promise<unknown>;
  registry: Registry;
  /** Where the retry hints' spread comes from (uniform in [0, 1)); default Math.random. */
  random?: () => number;
}

export type AdmissionRefusal = 'handshake' | 'start';

export class AdmissionControl {
  private state: LoadState = INITIAL_LOAD_STATE;
  private last: LoadSignals = { eventLoopDelayMs: 0, repliesWaiting: 0, redisLatencyMs: 0 };
  private readonly delay: ReturnType<typeof monitorEventLoopDelay>;
  private timer: NodeJS.Timeout | undefined;
  /** When the ping in flight was sent (null: none in flight). */
  private pingSentAt: number | null = null;
  private pingRtt = 0;
  private readonly refusals: Counter<'what'>;

  constructor(private readonly options: AdmissionOptions) {
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    const self = this;
    new Gauge({
      name: 'gateway_overloaded',
      help: 'Whether the gateway refuses new work now (1) or takes it (0): admission control',
      registers: [options.registry],
      collect() {
        this.set(self.state.overloaded ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gateway_load_signal',
      help: 'What admission control last measured: event-loop delay p90 (ms), replies waiting, Redis round trip (ms)',
      labelNames: ['signal'],
      registers: [options.registry],
      collect() {
        for (const [signal, value] of Object.entries(self.last)) this.set({ signal }, value);
      },
    });
    this.refusals = new Counter({
      name: 'gateway_admission_refusals_total',
      help: 'New work refused with `overloaded`, by what was refused',
      labelNames: ['what'],
      registers: [options.registry],
    });
  }

  start(): void {
    this.delay.enable();
    this.timer = setInterval(() => this.sample(Date.now()), this.options.sampleMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.delay.disable();
  }

  get overloaded(): boolean {
    return this.state.overloaded;
  }

  /** For `/readyz`: whether new work is taken, why not, and the last signals. */
  readiness(): { ready: boolean; reasons: string[]; signals: LoadSignals } {
    return { ready: !this.state.overloaded, reasons: this.state.reasons, signals: { ...this.last } };
  }

  /** Throws `overloaded` (with its retry hint) while the gateway refuses new work; counts the refusal. */
  admit(what: AdmissionRefusal): void {
    if (!this.state.overloaded) return;
    this.refusals.inc({ what });
    throw new AppError('overloaded', 'this gateway is at capacity; try again shortly', { retryAfterMs: this.retryHint() });
  }

  /** Spread on purpose: clients refused together must not all come back in the same instant. */
  private retryHint(): number {
    return Math.round(this.options.retryMs * (0.5 + (this.options.random ?? Math.random)()));
  }

  private sample(now: number): void {
    const eventLoopDelayMs = this.delay.count > 0 ? this.delay.percentile(90) / 1e6 : 0;
    this.delay.reset();
    // a ping still unanswered counts as slow as it already is
    const redisLatencyMs = this.pingSentAt === null ? this.pingRtt : Math.max(this.pingRtt, now - this.pingSentAt);
    this.last = { eventLoopDelayMs: Math.round(eventLoopDelayMs), repliesWaiting: this.options.repliesWaiting(), redisLatencyMs };
    this.state = assessLoad(this.state, this.last, this.options.limits, this.options.calmMs, now);
    if (this.pingSentAt === null) {
      const sentAt = (this.pingSentAt = Date.now());
      this.options
        .pingRedis()
        .catch(() => undefined) // a Redis that errors is the dependency's problem (`unavailable`), not load
        .finally(() => {
          this.pingRtt = Date.now() - sentAt;
          this.pingSentAt = null;
        });
    }
  }
}
