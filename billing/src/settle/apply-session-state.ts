/**
 * The session-state job: records the latest live state (status, active time) of a session.
 * Jobs may arrive late or twice; a job only writes when its version is newer than the stored one,
 * and never after the session was settled.
 */
import type { Kysely } from 'kysely';
import type { SessionStateJob } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { ensureSession } from './ensure-session.ts';

/** Returns true when the state was written, false when a newer state (or the settlement) was there first. */
export async function applySessionState(db: Kysely<Database>, job: SessionStateJob): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    const result = await trx
      .updateTable('sessions')
      .set({ status: job.status, active_ms: job.activeMs, state_version: job.version })
      .where('id', '=', job.session.sessionId)
      .where('state_version', '<', job.version)
      .where('settled_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  });
}
