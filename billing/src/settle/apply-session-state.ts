/**
 * The session-state and session-checkpoint jobs: record the latest live state of a session. Jobs may arrive late,
 * twice or out of order: the status only moves to a newer version, the checkpoint only to a later instant, and
 * nothing changes after the session was settled.
 */
import { sql, type Kysely } from 'kysely';
import type { SessionCheckpointJob, SessionStateJob } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { ensureSession } from './ensure-session.ts';
import { recordSessionEvent } from './record-session-event.ts';

/**
 * Returns true when anything was written: a newer status, or a later checkpoint. One UPDATE for both, because a
 * second update of the same row in one transaction makes Postgres re-check its foreign keys (a key-share lock on
 * the user's row that would queue behind settlements).
 */
export async function applySessionState(db: Kysely<Database>, job: SessionStateJob): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    const at = new Date(job.at);
    const newerState = sql<boolean>`state_version < ${job.version}`;
    const laterCheckpoint = sql<boolean>`(checkpoint_at is null or checkpoint_at < ${at})`;
    const result = await trx
      .updateTable('sessions')
      .set({
        status: sql`case when ${newerState} then ${job.status} else status end`,
        state_version: sql`greatest(state_version, ${job.version}::integer)`,
        checkpoint_cost: sql`case when ${laterCheckpoint} then ${job.cost}::numeric else checkpoint_cost end`,
        active_ms: sql`case when ${laterCheckpoint} then ${job.activeMs}::bigint else active_ms end`,
        message_count: sql`case when ${laterCheckpoint} then ${job.messageCount}::integer else message_count end`,
        checkpoint_at: sql`case when ${laterCheckpoint} then ${at}::timestamptz else checkpoint_at end`,
      })
      .where('id', '=', job.session.sessionId)
      .where('settled_at', 'is', null)
      .where(sql<boolean>`(${newerState} or ${laterCheckpoint})`)
      .executeTakeFirst();
    // the audit trail takes every version, in whatever order and however late it arrives
    await recordSessionEvent(trx, {
      sessionId: job.session.sessionId,
      version: job.version,
      status: job.status,
      at,
      activeMs: job.activeMs,
      reason: job.reason,
    });
    return result.numUpdatedRows > 0n;
  });
}

/** Returns true when the checkpoint was written, false when a later one (or the settlement) was there first. */
export async function applySessionCheckpoint(db: Kysely<Database>, job: SessionCheckpointJob): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    const at = new Date(job.at);
    const result = await trx
      .updateTable('sessions')
      .set({ checkpoint_at: at, checkpoint_cost: job.cost, active_ms: job.activeMs, message_count: job.messageCount })
      .where('id', '=', job.session.sessionId)
      .where('settled_at', 'is', null)
      .where((eb) => eb.or([eb('checkpoint_at', 'is', null), eb('checkpoint_at', '<', at)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  });
}
