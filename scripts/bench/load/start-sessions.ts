/** `startSessions`: each client of a pool starts its share of sessions (session:start), a bounded number at once. */
import type { StartSessionsParams, StartSessionsResult, StartedSession } from '../load-protocol.ts';
import { ask, unwrap } from './ask.ts';
import { forEachLimited, tally, type ClientPool } from './client-pool.ts';
import { reportProgress } from './progress-channel.ts';

const START_TIMEOUT_MS = 60_000;

export async function startSessions(pool: ClientPool, params: StartSessionsParams): Promise<StartSessionsResult> {
  const jobs: number[] = [];
  pool.clients.forEach((_, i) => {
    const count = typeof params.perClient === 'number' ? params.perClient : (params.perClient[i] ?? 0);
    for (let k = 0; k < count; k++) jobs.push(i);
  });
  const sessions: StartedSession[] = [];
  const errors: Record<string, number> = {};
  let failed = 0;
  const started = performance.now();
  let lastReport = started;
  await forEachLimited(jobs.length, params.concurrency, async (j) => {
    const client = pool.clients[jobs[j]!]!;
    try {
      const { session } = unwrap(await ask(client.socket, 'session:start', { cloneId: params.cloneId, type: params.type }, START_TIMEOUT_MS));
      sessions.push({ sessionId: session.id, userId: client.userId, client: client.index, startTime: Date.parse(session.startTime) });
    } catch (error) {
      failed += 1;
      tally(errors, error);
    }
    const now = performance.now();
    if (now - lastReport >= 500) {
      lastReport = now;
      reportProgress(`${pool.name}: ${sessions.length}/${jobs.length} sessions started (${failed} failed), ${Math.round(((sessions.length + failed) * 1000) / (now - started))}/s`);
    }
  });
  pool.sessions.push(...sessions);
  return { sessions, failed, errors, durationMs: performance.now() - started };
}
