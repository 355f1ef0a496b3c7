/**
 * Appends a session's state change to `session_events` (append-only, one row per state version): the audit trail
 * from which a session's intervals, and so its time cost, are recomputed.
 */
import type { Transaction } from 'kysely';
import type { Database, SessionEventKind, SessionStatus } from '#shared/db/schema.ts';

export interface SessionEvent {
  sessionId: string;
  version: number;
  status: SessionStatus;
  at: Date;
  activeMs: number;
  reason: string;
}

/** started for the first version, resumed for later activations. */
export function eventKind(status: SessionStatus, version: number): SessionEventKind {
  if (status === 'ended') return 'ended';
  if (status === 'paused') return 'paused';
  return version === 1 ? 'started' : 'resumed';
}

/** Inserts the event once; the same version again (a replayed job) changes nothing. */
export async function recordSessionEvent(trx: Transaction<Database>, event: SessionEvent): Promise<void> {
  await trx
    .insertInto('session_events')
    .values({
      session_id: event.sessionId,
      version: event.version,
      kind: eventKind(event.status, event.version),
      at: event.at,
      active_ms: event.activeMs,
      reason: event.reason || null,
    })
    .onConflict((oc) => oc.columns(['session_id', 'version']).doNothing())
    .execute();
}
