/**
 * The session-state and session-checkpoint jobs: record the latest live state of a session. Jobs may arrive late,
 * twice or out of order: the status only moves to a newer version, the checkpoint only to a later instant, and
 * nothing changes after the session was settled. One fact at a time through `writeFacts` (the batch path), so the
 * rules have one implementation.
 */
import type { Kysely } from 'kysely';
import type { SessionCheckpointJob, SessionStateJob } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { writeFact } from './write-facts.ts';

/**
 * Returns true when anything was written: a newer status, or a later checkpoint. One UPDATE for both, because a
 * second update of the same row in one transaction makes Postgres re-check its foreign keys.
 */
export function applySessionState(db: Kysely<Database>, job: SessionStateJob): Promise<boolean> {
  return writeFact(db, { name: 'session-state', data: job });
}

/** Returns true when the checkpoint was written, false when a later one (or the settlement) was there first. */
export function applySessionCheckpoint(db: Kysely<Database>, job: SessionCheckpointJob): Promise<boolean> {
  return writeFact(db, { name: 'session-checkpoint', data: job });
}
