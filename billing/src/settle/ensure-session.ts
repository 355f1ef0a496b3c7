/**
 * Every billing job carries the session header, so whichever job runs first creates the `sessions` row
 * (jobs of one session may run in any order). A row that exists already is checked against the header.
 */
import type { Kysely } from 'kysely';
import type { SessionHeader } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { BillingJobError } from './billing-job-error.ts';

const FOREIGN_KEY_VIOLATION = '23503';

/** Inserts the session from its header unless it exists; throws BillingJobError on a mismatch or unknown user/clone. */
export async function ensureSession(db: Kysely<Database>, header: SessionHeader): Promise<void> {
  let inserted: { id: string } | undefined;
  try {
    inserted = await db
      .insertInto('sessions')
      .values({
        id: header.sessionId,
        user_id: header.userId,
        clone_id: header.cloneId,
        session_type: header.type,
        status: 'active',
        start_time: header.startTime,
        rate_per_minute: header.ratePerMinute,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
  } catch (error) {
    if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) {
      throw new BillingJobError(
        'unknown_reference',
        `session ${header.sessionId} names an unknown user or clone`,
        { sessionId: header.sessionId, userId: header.userId, cloneId: header.cloneId },
        { cause: error },
      );
    }
    throw error;
  }
  if (inserted) return;

  const existing = await db
    .selectFrom('sessions')
    .select(['user_id', 'clone_id'])
    .where('id', '=', header.sessionId)
    .executeTakeFirstOrThrow();
  if (existing.user_id !== header.userId || existing.clone_id !== header.cloneId) {
    throw new BillingJobError('session_mismatch', `session ${header.sessionId} belongs to another user or clone`, {
      sessionId: header.sessionId,
      stored: { userId: existing.user_id, cloneId: existing.clone_id },
      job: { userId: header.userId, cloneId: header.cloneId },
    });
  }
}
