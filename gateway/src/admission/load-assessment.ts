/**
 * Whether a gateway is past what it can serve, from what it measured (pure: the sampler is admission-control.ts).
 * Overloaded as soon as one signal is over its limit; served again only once every signal has been back under its
 * limit for `calmMs` — so a gateway at the edge does not flap between refusing and taking work every sample.
 */

/** One sample of what the gateway measured. */
export interface LoadSignals {
  /** Event-loop delay over the last window (ms, 90th percentile): how late every callback of this process runs. */
  eventLoopDelayMs: number;
  /** Replies waiting for a slot (SessionService.replyLoad.queued). */
  repliesWaiting: number;
  /** Round trip of a command on the live-state connection (ms; still waiting counts as the time waited so far). */
  redisLatencyMs: number;
}

/** Limits per signal; 0 turns that signal off. */
export type LoadLimits = LoadSignals;

export interface LoadState {
  overloaded: boolean;
  /** The signals over their limits in the last sample, as `name>limit`. */
  reasons: string[];
  /** Since when every signal has been under its limit (ms), or null while one is over. */
  calmSince: number | null;
}

export const INITIAL_LOAD_STATE: LoadState = Object.freeze({ overloaded: false, reasons: [], calmSince: 0 });

export function assessLoad(previous: LoadState, signals: LoadSignals, limits: LoadLimits, calmMs: number, now: number): LoadState {
  const reasons: string[] = [];
  for (const name of Object.keys(limits) as Array<keyof LoadSignals>) {
    const limit = limits[name];
    if (limit > 0 && signals[name] > limit) reasons.push(`${name}>${limit}`);
  }
  if (reasons.length > 0) return { overloaded: true, reasons, calmSince: null };
  const calmSince = previous.calmSince ?? now;
  return { overloaded: previous.overloaded && now - calmSince < calmMs, reasons, calmSince };
}
