/**
 * `meterWindow`: records `meter:tick` arrivals for a window and measures them against the cadence each session
 * should see. For a session with arrivals a_0..a_n in the window, tick k is expected at anchor + k × tickMs, where
 * the anchor is the session's best phase, min_k (a_k − k × tickMs); its lateness is a_k − k × tickMs − anchor
 * (≥ 0). A tick that never came shifts every later one by a whole interval, so skipped ticks count as late;
 * drift of the gateway's interval accumulates too. Also reported: each gap between consecutive ticks − tickMs.
 */
import { summarize } from '../latency-stats.ts';
import type { MeterWindowParams, MeterWindowResult } from '../load-protocol.ts';
import type { ClientPool } from './client-pool.ts';
import { reportProgress } from './progress-channel.ts';

export async function meterWindow(pool: ClientPool, params: MeterWindowParams): Promise<MeterWindowResult> {
  pool.ticks.clear();
  pool.recordTicks = true;
  const start = performance.now();
  const endedBefore = new Set(pool.ended.map((e) => e.sessionId));
  while (performance.now() - start < params.durationMs) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(1000, params.durationMs)));
    let ticks = 0;
    for (const list of pool.ticks.values()) ticks += list.length;
    reportProgress(`${pool.name}: meter window ${((performance.now() - start) / 1000).toFixed(0)}/${(params.durationMs / 1000).toFixed(0)} s, ${ticks} ticks, ${pool.ended.length} sessions ended`);
  }
  pool.recordTicks = false;
  const end = performance.now();

  const lateness: number[] = [];
  const gapExcess: number[] = [];
  let ticks = 0;
  for (const arrivals of pool.ticks.values()) {
    ticks += arrivals.length;
    let anchor = Infinity;
    arrivals.forEach((at, k) => (anchor = Math.min(anchor, at - k * params.tickMs)));
    arrivals.forEach((at, k) => {
      lateness.push(at - k * params.tickMs - anchor);
      if (k > 0) gapExcess.push(at - arrivals[k - 1]! - params.tickMs);
    });
  }
  // sessions open for the whole window (not ended before or during it) should have had a tick every interval
  const endedNow = new Set(pool.ended.map((e) => e.sessionId));
  const expected = Math.floor((end - start) / params.tickMs) - 1;
  let missingTicks = 0;
  for (const session of pool.sessions) {
    if (endedBefore.has(session.sessionId) || endedNow.has(session.sessionId)) continue;
    const got = pool.ticks.get(session.sessionId)?.length ?? 0;
    missingTicks += Math.max(0, expected - got);
  }
  return { lateness: summarize(lateness), gapExcess: summarize(gapExcess), sessionsTicked: pool.ticks.size, ticks, missingTicks };
}
