/** `endSessions`: every session of a pool sends `session:end` at the same moment; resolves once all are answered. */
import type { EndSessionsResult } from '../load-protocol.ts';
import { ask, unwrap } from './ask.ts';
import { tally, type ClientPool } from './client-pool.ts';

const END_TIMEOUT_MS = 120_000;

export async function endSessions(pool: ClientPool): Promise<EndSessionsResult> {
  const errors: Record<string, number> = {};
  let ended = 0;
  let failed = 0;
  const firstEmitAt = Date.now();
  const started = performance.now();
  await Promise.all(
    pool.sessions.map(async (session) => {
      try {
        unwrap(await ask(pool.clients[session.client]!.socket, 'session:end', { sessionId: session.sessionId }, END_TIMEOUT_MS));
        ended += 1;
      } catch (error) {
        failed += 1;
        tally(errors, error);
      }
    }),
  );
  return { ended, failed, errors, durationMs: performance.now() - started, firstEmitAt };
}
