/**
 * The session-state and session-checkpoint jobs: record the latest live state of a session. Jobs may arrive late,
 * twice or out of order: the status only moves to a newer version, the checkpoint only to a later instant, and
 * nothing changes after the session was settled.
 */
import type { Kysely, Transaction } from 'kysely';
import type { SessionCheckpointJob, SessionStateJob } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { ensureSession } from './ensure-session.ts';

/** Returns true when the state was written, false when a newer state (or the settlement) was there first. */
export async function applySessionState(db: Kysely<Database>, job: SessionStateJob): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    const result = await trx
      .updateTable('sessions')
      .set({ status: job.status, state_version: job.version })
      .where('id', '=', job.session.sessionId)
      .where('state_version', '<', job.version)
      .where('settled_at', 'is', null)
      .executeTakeFirst();
    await recordCheckpoint(trx, job);
    return result.numUpdatedRows > 0n;
  });
}

/** Returns true when the checkpoint was written, false when a later one (or the settlement) was there first. */
export async function applySessionCheckpoint(db: Kysely<Database>, job: SessionCheckpointJob): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    return recordCheckpoint(trx, job);
  });
}

async function recordCheckpoint(trx: Transaction<Database>, job: SessionCheckpointJob): Promise<boolean> {
  const at = new Date(job.at);
  const result = await trx
    .updateTable('sessions')
    .set({ checkpoint_at: at, checkpoint_cost: job.cost, active_ms: job.activeMs, message_count: job.messageCount })
    .where('id', '=', job.session.sessionId)
    .where('settled_at', 'is', null)
    .where((eb) => eb.or([eb('checkpoint_at', 'is', null), eb('checkpoint_at', '<', at)]))
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
